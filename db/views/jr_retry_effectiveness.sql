-- jr_retry_effectiveness: do retries fix failed steps? One row per step type, over the steps that
-- failed at least once. A step counts as fixed when its newest event (by event time) is a success,
-- so a success came after its failures. Reads only jr_step_rewards.
-- pgspot PS015: OR REPLACE, as make migrate applies this file again when it changes; a view
-- of this name that another role owns is refused first (README, Objects found in place).
CREATE OR REPLACE VIEW public.jr_retry_effectiveness AS
SELECT
    r.step_type::text AS step_type,
    count(*) AS steps_failed,
    count(*) FILTER (WHERE r.execution_result = 'success') AS steps_fixed,
    round(count(*) FILTER (WHERE r.execution_result = 'success')::numeric / count(*), 3) AS fix_rate,
    round(avg(r.attempts) FILTER (WHERE r.execution_result = 'success'), 2) AS attempts_to_fix
FROM public.jr_step_rewards r
WHERE r.failed_attempts > 0
GROUP BY r.step_type;

COMMENT ON VIEW public.jr_retry_effectiveness IS
    'Per step type, over steps that failed at least once: how many a later attempt fixed. Reads jr_step_rewards only.';
COMMENT ON COLUMN public.jr_retry_effectiveness.step_type IS 'search_replace, bash, ...';
COMMENT ON COLUMN public.jr_retry_effectiveness.steps_failed IS 'Steps of this type that failed at least once.';
COMMENT ON COLUMN public.jr_retry_effectiveness.steps_fixed IS 'Of those, steps whose newest result is success.';
COMMENT ON COLUMN public.jr_retry_effectiveness.fix_rate IS 'steps_fixed / steps_failed, 0 to 1.';
COMMENT ON COLUMN public.jr_retry_effectiveness.attempts_to_fix IS 'Mean runs a fixed step took, its failures included.';
