#!/usr/bin/env bash
# plpgsql_check on every PL/pgSQL function the project installs, with all warnings on.
# Prints every finding; fails on any error. The extension is created inside a transaction that
# rolls back, so nothing is left in the target database.
set -euo pipefail
cd "$(dirname "$0")/.."

names=$(sed -n 's/^CREATE OR REPLACE FUNCTION public\.\([a-z_]*\)(.*/\1/p' db/functions/*.sql | paste -sd, -)
report=$(psql -X -q -v ON_ERROR_STOP=1 -At -F ' | ' -v names="$names" <<'SQL'
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS plpgsql_check;
SELECT c.level, p.oid::regprocedure, c.lineno, c.message
FROM pg_proc p
JOIN pg_language l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
CROSS JOIN LATERAL plpgsql_check_function_tb(p.oid, all_warnings => true) c
WHERE p.pronamespace = 'public'::regnamespace
  AND p.proname = ANY (string_to_array(:'names', ','));
SELECT 'checked | ' || count(*) FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
WHERE p.pronamespace = 'public'::regnamespace AND p.proname = ANY (string_to_array(:'names', ','));
ROLLBACK;
SQL
)
findings=$(grep -v '^checked | ' <<<"$report" || true)
checked=$(sed -n 's/^checked | //p' <<<"$report")
[ -z "$findings" ] || printf '%s\n' "$findings"
errors=$(grep -c '^error' <<<"$findings" || true)
echo "plpgsql_check: $checked functions, $errors errors, $(grep -c . <<<"$findings" || true) findings"
[ "$errors" -eq 0 ]
