-- begin_step(...): the retry check and the pending marker in one round trip. Returns 'skip' when the
-- step already succeeded in this task, and otherwise records the step as pending and returns 'run'.
--   * With a step_definition_hash: the step succeeded when its definition has at least `occurrence`
--     successes in the task (jr_step_definition_successes), wherever it stood in the plan; the k-th
--     time a definition occurs in a plan matches its k-th success, so a step planned twice (tests
--     before and after an edit) runs twice.
--   * Without one (a caller that passes no step): the seed's check by position, as step_succeeded.
-- The pending marker does not wait for its WAL flush (synchronous_commit off for this transaction):
-- a marker lost in a server crash only means the step shows no pending row; the outcome, recorded by
-- record_step in its own transaction, stays durable.
-- Errors: those of record_step, and an occurrence below 1 (22023).
-- pgspot PS002: OR REPLACE, as make migrate applies this file again when it changes; a function
-- of this name that another role owns is refused first (README, Objects found in place).
CREATE OR REPLACE FUNCTION public.begin_step(
    task_id integer,
    step_number integer,
    step_type text,
    target_file text,
    step_definition_hash text DEFAULT NULL,
    occurrence integer DEFAULT 1,
    recorded_at timestamptz DEFAULT NULL,
    event_id uuid DEFAULT NULL,
    executor text DEFAULT NULL
)
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    successes integer;
BEGIN
    IF begin_step.task_id IS NULL OR begin_step.step_number IS NULL OR begin_step.occurrence IS NULL THEN
        RAISE EXCEPTION 'begin_step: % must not be NULL',
                CASE WHEN begin_step.task_id IS NULL THEN 'task_id'
                     WHEN begin_step.step_number IS NULL THEN 'step_number' ELSE 'occurrence' END
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF begin_step.occurrence < 1 THEN
        RAISE EXCEPTION 'begin_step: occurrence must be 1 or more, got %', begin_step.occurrence
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF begin_step.step_definition_hash IS NOT NULL THEN
        SELECT s.successes INTO successes
        FROM public.jr_step_definition_successes s
        WHERE s.task_id = begin_step.task_id AND s.step_definition_hash = begin_step.step_definition_hash;
        IF successes >= begin_step.occurrence THEN
            RETURN 'skip';
        END IF;
    ELSIF public.step_succeeded(begin_step.task_id, begin_step.step_number, NULL::text) THEN
        RETURN 'skip';
    END IF;

    PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
    -- Every argument given, each of its parameter's exact type: no overload of record_step that
    -- someone else created can be a better match.
    PERFORM public.record_step(begin_step.task_id, begin_step.step_number, begin_step.step_type,
        begin_step.target_file, 'pending'::text, NULL::integer, NULL::text, begin_step.recorded_at,
        begin_step.event_id, begin_step.executor, begin_step.step_definition_hash);
    RETURN 'run';
END
$$;

COMMENT ON FUNCTION public.begin_step(integer, integer, text, text, text, integer, timestamptz, uuid, text) IS
    'The retry check and the pending marker in one call: skip when the step (by its definition and occurrence, else by position) already succeeded in the task; otherwise record it pending (without waiting for the WAL flush) and return run.';

REVOKE ALL ON FUNCTION public.begin_step(integer, integer, text, text, text, integer, timestamptz, uuid, text) FROM PUBLIC;
