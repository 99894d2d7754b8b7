-- jr_step_type_stats: which step types work, one row per step type.
-- Reads only jr_step_rewards (one row per step, with its attempt counters), never the history,
-- so its cost follows the number of steps, not of attempts.
-- pgspot PS015: OR REPLACE, as make migrate applies this file again when it changes; a view
-- of this name that another role owns is refused first (README, Objects found in place).
CREATE OR REPLACE VIEW public.jr_step_type_stats AS
SELECT
    r.step_type::text AS step_type,
    count(*) AS steps,
    sum(r.attempts) AS attempts,
    sum(r.failed_attempts) AS failed_attempts,
    round(1 - sum(r.failed_attempts)::numeric / nullif(sum(r.attempts), 0), 3) AS success_rate,
    count(*) FILTER (WHERE r.execution_result = 'success') AS steps_succeeded,
    percentile_disc(0.5) WITHIN GROUP (ORDER BY r.execution_time_ms) AS p50_ms,
    percentile_disc(0.95) WITHIN GROUP (ORDER BY r.execution_time_ms) AS p95_ms,
    max(r.last_event_at) AS last_seen
FROM public.jr_step_rewards r
GROUP BY r.step_type;

COMMENT ON VIEW public.jr_step_type_stats IS
    'Per step type: steps, attempts, success rate, p50/p95 time and when last seen. Reads jr_step_rewards only.';
COMMENT ON COLUMN public.jr_step_type_stats.step_type IS 'search_replace, bash, ...';
COMMENT ON COLUMN public.jr_step_type_stats.steps IS 'How many steps of this type the ledger holds.';
COMMENT ON COLUMN public.jr_step_type_stats.attempts IS 'Runs that reached an outcome (success or failed).';
COMMENT ON COLUMN public.jr_step_type_stats.failed_attempts IS 'Runs that failed.';
COMMENT ON COLUMN public.jr_step_type_stats.success_rate IS 'Share of runs that succeeded, 0 to 1; NULL before any outcome.';
COMMENT ON COLUMN public.jr_step_type_stats.steps_succeeded IS 'Steps whose current result is success.';
COMMENT ON COLUMN public.jr_step_type_stats.p50_ms IS 'Median execution_time_ms of each step''s latest run.';
COMMENT ON COLUMN public.jr_step_type_stats.p95_ms IS '95th percentile of execution_time_ms of each step''s latest run.';
COMMENT ON COLUMN public.jr_step_type_stats.last_seen IS 'Event time of the newest event of this type.';
