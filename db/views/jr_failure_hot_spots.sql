-- jr_failure_hot_spots: where steps fail, one row per target file and step type that ever failed,
-- most failed attempts first. Bash steps have no target: their row has target_file NULL.
-- Reads only jr_step_rewards.
-- pgspot PS015: OR REPLACE, as make migrate applies this file again when it changes; a view
-- of this name that another role owns is refused first (README, Objects found in place).
CREATE OR REPLACE VIEW public.jr_failure_hot_spots AS
SELECT
    r.target_file::text AS target_file,
    r.step_type::text AS step_type,
    sum(r.failed_attempts) AS failed_attempts,
    count(*) AS steps_failed,
    count(*) FILTER (WHERE r.execution_result = 'failed') AS still_failing,
    max(r.last_event_at) AS last_seen
FROM public.jr_step_rewards r
WHERE r.failed_attempts > 0
GROUP BY r.target_file, r.step_type
ORDER BY failed_attempts DESC, steps_failed DESC, target_file, step_type;

COMMENT ON VIEW public.jr_failure_hot_spots IS
    'Target files and step types with the most failed attempts, worst first. Reads jr_step_rewards only.';
COMMENT ON COLUMN public.jr_failure_hot_spots.target_file IS 'The file the steps edit; NULL for steps without one (bash).';
COMMENT ON COLUMN public.jr_failure_hot_spots.step_type IS 'search_replace, bash, ...';
COMMENT ON COLUMN public.jr_failure_hot_spots.failed_attempts IS 'Failed runs of these steps.';
COMMENT ON COLUMN public.jr_failure_hot_spots.steps_failed IS 'Steps that failed at least once.';
COMMENT ON COLUMN public.jr_failure_hot_spots.still_failing IS 'Of those, steps whose current result is failed.';
COMMENT ON COLUMN public.jr_failure_hot_spots.last_seen IS 'Event time of the newest event of these steps.';
