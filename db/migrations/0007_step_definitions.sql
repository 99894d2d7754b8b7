-- 0007: a step known by its definition. The executor re-plans a task on every retry, so a step's
-- number may name another step in the next attempt. The client fingerprints each step (SHA-256 of a
-- canonical form of its type, target and content; the content never leaves the executor) and the
-- retry check asks "has this definition already succeeded in this task, as often as it occurs in
-- the plan so far?", wherever the step now stands.
-- New columns without a default or a CHECK: no table rewrite and no scan under an exclusive lock on a
-- big history; record_step and begin_step refuse anything but 64 lowercase hex digits.
ALTER TABLE public.jr_step_rewards ADD COLUMN step_definition_hash VARCHAR(64);
ALTER TABLE public.jr_step_attempts ADD COLUMN step_definition_hash VARCHAR(64);

-- One row per definition that succeeded in a task: the retry check reads one row by its key, so its
-- plan cannot depend on statistics, and a re-planned step number cannot hide a success.
CREATE TABLE public.jr_step_definition_successes (
    task_id INTEGER NOT NULL,
    step_definition_hash VARCHAR(64) NOT NULL,
    successes INTEGER NOT NULL,
    last_success_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT jr_step_definition_successes_pkey PRIMARY KEY (task_id, step_definition_hash),
    CONSTRAINT jr_step_definition_successes_positive CHECK (successes > 0)
);

COMMENT ON COLUMN public.jr_step_rewards.step_definition_hash IS
    'SHA-256 hex of the step''s definition (type, target, content), computed by the client; NULL for callers that pass no step.';
COMMENT ON COLUMN public.jr_step_attempts.step_definition_hash IS
    'SHA-256 hex of the step''s definition (type, target, content), computed by the client; NULL for callers that pass no step.';
COMMENT ON TABLE public.jr_step_definition_successes IS
    'How often each step definition succeeded in a task, kept by record_step; begin_step skips the k-th occurrence of a definition once it has k successes.';
COMMENT ON COLUMN public.jr_step_definition_successes.task_id IS 'The task.';
COMMENT ON COLUMN public.jr_step_definition_successes.step_definition_hash IS 'The step definition''s fingerprint.';
COMMENT ON COLUMN public.jr_step_definition_successes.successes IS 'Success events of this definition in this task, each event_id counted once.';
COMMENT ON COLUMN public.jr_step_definition_successes.last_success_at IS 'Event time of the newest of them.';

-- record_step gains step_definition_hash: the old signature goes, db/functions/record_step.sql
-- creates the new one in the same make migrate.
DROP FUNCTION IF EXISTS public.record_step(integer, integer, text, text, text, integer, text, timestamptz, uuid, text);
