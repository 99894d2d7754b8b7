-- 0004: what the reward work and the DBA views need.
--   * failed_attempts on jr_step_rewards, kept by record_step, so the views answer "which steps
--     failed, and did a retry fix them" from one row per step, never scanning the history;
--   * the vocabularies of verified_outcome, retry_decision and task_outcome, and finite rewards
--     and scores, as CHECKs (written by set_step_reward and record_exploration).
-- As in 0003, existing rows that break a new CHECK are kept: each CHECK is added NOT VALID and
-- validated only when no row breaks it; otherwise a NOTICE says how many rows do.

ALTER TABLE public.jr_step_rewards
    ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;

-- Counted from the history; a row from before the ledger (no history) counts its own result.
UPDATE public.jr_step_rewards AS r
SET failed_attempts = h.failed
FROM (SELECT a.task_id, a.step_number, count(*) FILTER (WHERE a.execution_result = 'failed') AS failed
      FROM public.jr_step_attempts a
      GROUP BY a.task_id, a.step_number) AS h
WHERE h.task_id = r.task_id AND h.step_number = r.step_number;

UPDATE public.jr_step_rewards AS r
SET failed_attempts = 1
WHERE r.execution_result = 'failed'
  AND NOT EXISTS (SELECT FROM public.jr_step_attempts a WHERE a.task_id = r.task_id AND a.step_number = r.step_number);

ALTER TABLE public.jr_step_rewards
    ADD CONSTRAINT jr_step_rewards_failed_attempts_valid CHECK (failed_attempts BETWEEN 0 AND attempts) NOT VALID,
    ADD CONSTRAINT jr_step_rewards_implicit_reward_finite
        CHECK (implicit_reward NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)) NOT VALID,
    ADD CONSTRAINT jr_step_rewards_verified_outcome_known
        CHECK (verified_outcome IN ('correct', 'incorrect', 'partial', 'inconclusive')) NOT VALID,
    ADD CONSTRAINT jr_step_rewards_retry_decision_known
        CHECK (retry_decision IN ('skip', 'retry', 'revert', 'abandon', 'escalate')) NOT VALID;

ALTER TABLE public.jr_exploration_log
    ADD CONSTRAINT jr_exploration_log_scores_finite
        CHECK (novelty_score NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)
           AND curiosity_bonus NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)) NOT VALID,
    ADD CONSTRAINT jr_exploration_log_task_outcome_known
        CHECK (task_outcome IN ('success', 'failed', 'partial', 'abandoned')) NOT VALID;

DO $$
DECLARE
    c record;
    breaking bigint;
BEGIN
    FOR c IN
        SELECT conrelid::regclass AS tab, conname, pg_catalog.pg_get_expr(conbin, conrelid) AS expr
        FROM pg_catalog.pg_constraint
        WHERE conrelid IN ('public.jr_step_rewards'::regclass, 'public.jr_exploration_log'::regclass)
          AND contype = 'c' AND NOT convalidated
    LOOP
        EXECUTE format('SELECT count(*) FROM %s WHERE NOT (%s)', c.tab, c.expr) INTO breaking;
        IF breaking = 0 THEN
            EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT %I', c.tab, c.conname);
        ELSE
            RAISE NOTICE '% existing row(s) of % break % (%); they are kept and new writes are checked. Fix them, then run: ALTER TABLE % VALIDATE CONSTRAINT %;',
                breaking, c.tab, c.conname, c.expr, c.tab, c.conname;
        END IF;
    END LOOP;
END
$$;

COMMENT ON COLUMN public.jr_step_rewards.failed_attempts IS
    'How many runs of the step failed (failed events, stale ones included); at most attempts.';
COMMENT ON COLUMN public.jr_step_rewards.implicit_reward IS
    'Step-level reward from the reward model, a finite number; written by set_step_reward().';
COMMENT ON COLUMN public.jr_step_rewards.verified_outcome IS
    'What verification found: correct, incorrect, partial or inconclusive; NULL until verified. Written by set_step_reward().';
COMMENT ON COLUMN public.jr_step_rewards.retry_decision IS
    'What step-aware retry decided: skip, retry, revert, abandon or escalate; NULL until decided. Written by set_step_reward().';
COMMENT ON COLUMN public.jr_exploration_log.novelty_score IS 'How new the task was to this Jr, a finite number.';
COMMENT ON COLUMN public.jr_exploration_log.curiosity_bonus IS 'Reward bonus granted for exploring, a finite number.';
COMMENT ON COLUMN public.jr_exploration_log.task_outcome IS
    'How the task ended: success, failed, partial or abandoned; NULL while unknown.';
