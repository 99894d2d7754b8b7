-- jr_task_progress: where each task stands, one row per task.
-- Reads only jr_step_rewards; filtered by task_id (WHERE task_id = 7) the filter reaches the scan,
-- which then uses the index on task_id.
-- pgspot PS015: OR REPLACE, as make migrate applies this file again when it changes; a view
-- of this name that another role owns is refused first (README, Objects found in place).
CREATE OR REPLACE VIEW public.jr_task_progress AS
SELECT
    r.task_id,
    count(*) AS steps,
    count(*) FILTER (WHERE r.execution_result = 'success') AS succeeded,
    count(*) FILTER (WHERE r.execution_result = 'failed') AS failed,
    count(*) FILTER (WHERE r.execution_result = 'pending') AS pending,
    sum(r.attempts) AS attempts,
    count(*) FILTER (WHERE r.attempts > 1) AS steps_retried,
    sum(r.execution_time_ms) AS total_ms,
    max(r.updated_at) AS last_update
FROM public.jr_step_rewards r
GROUP BY r.task_id;

COMMENT ON VIEW public.jr_task_progress IS
    'Per task: steps succeeded, failed and pending, attempts, steps retried, total time, last update. Reads jr_step_rewards only.';
COMMENT ON COLUMN public.jr_task_progress.task_id IS 'The task.';
COMMENT ON COLUMN public.jr_task_progress.steps IS 'Steps recorded for the task.';
COMMENT ON COLUMN public.jr_task_progress.succeeded IS 'Steps whose current result is success.';
COMMENT ON COLUMN public.jr_task_progress.failed IS 'Steps whose current result is failed.';
COMMENT ON COLUMN public.jr_task_progress.pending IS 'Steps running now, or that never finished (a crash).';
COMMENT ON COLUMN public.jr_task_progress.attempts IS 'Runs of its steps that reached an outcome.';
COMMENT ON COLUMN public.jr_task_progress.steps_retried IS 'Steps that needed more than one run.';
COMMENT ON COLUMN public.jr_task_progress.total_ms IS 'Sum of the latest run time of each step, in milliseconds.';
COMMENT ON COLUMN public.jr_task_progress.last_update IS 'When the ledger last wrote one of its steps (server time).';
