-- 0003: what jr_step_rewards needs beyond the seed: an attempts counter, the event time of the
-- current state (so a late replay never undoes newer state), and CHECKs that turn nonsense into errors.
--
-- A database where the seed's SQL ran by hand may already hold rows that break a CHECK. Those rows
-- are kept: each CHECK is added NOT VALID (enforced for every new write), then validated only
-- when no existing row breaks it; otherwise a NOTICE says how many rows do and how to finish.

ALTER TABLE public.jr_step_rewards
    ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN last_event_at TIMESTAMPTZ;

-- Rows that predate the ledger: each finished row stands for one recorded outcome.
UPDATE public.jr_step_rewards
SET attempts = CASE WHEN execution_result IN ('success', 'failed') THEN 1 ELSE 0 END,
    last_event_at = COALESCE(updated_at, created_at, now());

ALTER TABLE public.jr_step_rewards
    ALTER COLUMN last_event_at SET DEFAULT now(),
    ALTER COLUMN last_event_at SET NOT NULL,
    ADD CONSTRAINT jr_step_rewards_attempts_nonnegative CHECK (attempts >= 0),
    ADD CONSTRAINT jr_step_rewards_result_known
        CHECK (execution_result IN ('pending', 'success', 'failed')) NOT VALID,
    ADD CONSTRAINT jr_step_rewards_step_number_nonnegative CHECK (step_number >= 0) NOT VALID,
    ADD CONSTRAINT jr_step_rewards_time_nonnegative CHECK (execution_time_ms >= 0) NOT VALID;

DO $$
DECLARE
    c record;
    breaking bigint;
BEGIN
    FOR c IN
        SELECT conname, pg_catalog.pg_get_expr(conbin, conrelid) AS expr
        FROM pg_catalog.pg_constraint
        WHERE conrelid = 'public.jr_step_rewards'::regclass AND contype = 'c' AND NOT convalidated
    LOOP
        EXECUTE format('SELECT count(*) FROM public.jr_step_rewards WHERE NOT (%s)', c.expr) INTO breaking;
        IF breaking = 0 THEN
            EXECUTE format('ALTER TABLE public.jr_step_rewards VALIDATE CONSTRAINT %I', c.conname);
        ELSE
            RAISE NOTICE '% existing row(s) of jr_step_rewards break % (%); they are kept and new writes are checked. Fix them, then run: ALTER TABLE public.jr_step_rewards VALIDATE CONSTRAINT %;',
                breaking, c.conname, c.expr, c.conname;
        END IF;
    END LOOP;
END
$$;

COMMENT ON TABLE public.jr_step_rewards IS
    'Current state of every executor step: one row per (task_id, step_number), written by record_step(); history is in jr_step_attempts.';
COMMENT ON COLUMN public.jr_step_rewards.id IS 'Surrogate key (the seed''s SERIAL).';
COMMENT ON COLUMN public.jr_step_rewards.task_id IS 'The executor task (jr_work_queue id).';
COMMENT ON COLUMN public.jr_step_rewards.step_number IS 'The step''s number within its task, 0 or more.';
COMMENT ON COLUMN public.jr_step_rewards.step_type IS 'search_replace, bash, or another executor step type (at most 30 characters).';
COMMENT ON COLUMN public.jr_step_rewards.target_file IS 'The file the step edits, middle-elided with a visible marker beyond 500 characters.';
COMMENT ON COLUMN public.jr_step_rewards.step_content_hash IS 'SHA-256 hex of task_id:step_number:step_type:target_file (full path; NULL spelled None), the seed''s formula; step_succeeded() compares it.';
COMMENT ON COLUMN public.jr_step_rewards.execution_result IS 'pending (running or never finished), success or failed: the newest event''s result.';
COMMENT ON COLUMN public.jr_step_rewards.implicit_reward IS 'Placeholder for the step-level reward model (later phase).';
COMMENT ON COLUMN public.jr_step_rewards.verified_outcome IS 'Placeholder: outcome confirmed by verification (later phase).';
COMMENT ON COLUMN public.jr_step_rewards.retry_decision IS 'Placeholder: what step-aware retry decided (later phase).';
COMMENT ON COLUMN public.jr_step_rewards.execution_time_ms IS 'Wall time of the newest run in milliseconds; NULL while pending.';
COMMENT ON COLUMN public.jr_step_rewards.error_detail IS 'What went wrong in the newest run, middle-elided with a visible marker beyond 16384 characters.';
COMMENT ON COLUMN public.jr_step_rewards.created_at IS 'When the step was first recorded (server time).';
COMMENT ON COLUMN public.jr_step_rewards.updated_at IS 'When the current state was last written (server time).';
COMMENT ON COLUMN public.jr_step_rewards.attempts IS 'How many runs of the step reached an outcome (success or failed); pending markers do not count.';
COMMENT ON COLUMN public.jr_step_rewards.last_event_at IS 'Event time of the current state; an event older than this does not overwrite it.';

COMMENT ON TABLE public.jr_exploration_log IS 'Exploration tracking for curiosity-driven task selection: one row per explored task.';
COMMENT ON COLUMN public.jr_exploration_log.id IS 'Surrogate key (the seed''s SERIAL).';
COMMENT ON COLUMN public.jr_exploration_log.jr_type IS 'Which kind of Jr explored.';
COMMENT ON COLUMN public.jr_exploration_log.task_type IS 'The kind of task it took.';
COMMENT ON COLUMN public.jr_exploration_log.novelty_score IS 'How new the task was to this Jr (later phase).';
COMMENT ON COLUMN public.jr_exploration_log.curiosity_bonus IS 'Reward bonus granted for exploring (later phase).';
COMMENT ON COLUMN public.jr_exploration_log.task_outcome IS 'How the task ended.';
COMMENT ON COLUMN public.jr_exploration_log.created_at IS 'When it was logged (server time).';
