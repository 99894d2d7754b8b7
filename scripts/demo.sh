#!/usr/bin/env bash
# make demo: a task whose bash step fails on the first attempt, run twice against the embedded
# database. The retry is re-planned, as the executor's LLM does: a new step comes first, so every
# step has a new number. The retry still skips the edit that succeeded, by its definition, so the
# edit is not applied twice, and runs the new step.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${JR_VENV:-.venv}
work=$(mktemp -d /tmp/jr-demo-XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r examples/demo/project/. "$work"
export JR_STEP_SPOOL="$work/.jr-spool.jsonl"
# A new task id for every run (microseconds, kept in integer range), so the demo can run again.
task_id=$(( $(date +%s%6N) % 2000000000 ))
run() { "$venv/bin/jr-steps" "$@"; }
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
title() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

title "The task: examples/demo/task.md, in a scratch copy of its files ($work, removed at the end)"
grep '^### Step' examples/demo/task.md | sed 's/^### /  /'

title "Attempt 1"
run run examples/demo/task.md --task-id "$task_id" --workdir "$work" || true

title "Attempt 2: the retry, re-planned (examples/demo/task-replanned.md): a new step 1, so the edit is now step 2"
run run examples/demo/task-replanned.md --task-id "$task_id" --workdir "$work"

title "The ledger: jr-steps status --task-id $task_id"
run status --task-id "$task_id"

title "Every attempt, failures included (jr_step_attempts)"
psql -X -q -P footer=off -c "SELECT step_number AS step, attempt_number AS attempt, execution_result AS result,
    execution_time_ms AS ms, left(step_definition_hash, 12) AS definition, left(error_detail, 40) AS error
    FROM jr_step_attempts WHERE task_id = $task_id ORDER BY id"

title "The edited file: $work/greeter.py"
cat "$work/greeter.py"

title "Without the ledger"
"$venv/bin/python" - "$work/greeter.py" <<'PY'
import sys
from jr_step_rewards.instructions import parse_instructions
edit = parse_instructions(open("examples/demo/task.md").read())[0]
text = open("examples/demo/project/greeter.py").read()
for attempt in (1, 2):  # the old executor re-applies every step on a retry
    text = text.replace(edit.search, edit.replace, 1)
old, new = text.count("def shout"), open(sys.argv[1]).read().count("def shout")
print(f"Re-applying the edit on the retry, as the old executor did, leaves {old} copies of shout().")
print(f"With the ledger the re-planned retry skipped it at its new number: {new} copy.")
PY
