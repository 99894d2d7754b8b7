#!/usr/bin/env bash
# make uninstall CONFIRM=yes: db/uninstall.sql in one transaction on the target database. It deletes
# data, so without CONFIRM=yes it only says what it would drop, and exits 2.
set -euo pipefail
cd "$(dirname "$0")/.."
database=$(psql -X -A -t -q -c 'SELECT current_database()')
if [ "${CONFIRM:-}" != yes ]; then
    echo "make uninstall drops the step ledger from $database (the database named above):" >&2
    echo "  tables jr_step_rewards, jr_step_attempts, jr_exploration_log, jr_step_definition_successes," >&2
    echo "  jr_schema_migrations, jr_schema_definitions WITH ALL THEIR ROWS," >&2
    echo "  its views and functions, and the roles jr_executor, jr_rewarder, jr_reader and jr_owner when nothing" >&2
    echo "  else uses them." >&2
    echo "Nothing was done. To go ahead: make uninstall CONFIRM=yes" >&2
    exit 2
fi
psql -X -q -v ON_ERROR_STOP=1 --single-transaction -f db/uninstall.sql
echo "uninstall: the step ledger is gone from $database"
