#!/usr/bin/env bash
# make prune OLDER_THAN='90 days' [BATCH=10000]: deletes the history rows (jr_step_attempts) stored
# longer ago than OLDER_THAN, one batch per call of prune_step_attempts, each call its own short
# transaction, until none is left. jr_step_rewards, the current state, is never touched.
set -euo pipefail
older_than=${OLDER_THAN:?"set OLDER_THAN, e.g. make prune OLDER_THAN='90 days'"}
batch=${BATCH:-10000}
total=0
while :; do
    # Through stdin, so psql quotes the values (:'name'); -c would not substitute them.
    deleted=$(psql -X -At -v ON_ERROR_STOP=1 -v older_than="$older_than" -v batch="$batch" 2>&1 \
        <<<"SELECT public.prune_step_attempts(:'older_than'::interval, :'batch'::integer)") \
        || { echo "prune: $deleted" >&2; exit 1; }
    total=$((total + deleted))
    [ "$deleted" -ge "$batch" ] || break
done
echo "prune: deleted $total history rows stored more than $older_than ago"
