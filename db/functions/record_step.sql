-- record_step(...): the executor's one call per step event. One round trip, and it:
--   * rejects bad input with a message naming the value and a stable SQLSTATE;
--   * appends the event to jr_step_attempts once per event_id, so replays are safe ('duplicate');
--   * writes the step's current state in jr_step_rewards unless that state comes from a newer event
--     ('stale': history and attempts counted, state untouched), else 'recorded'; an event time in
--     the future counts as now;
--   * stores step_content_hash as the seed's Python computed it, from the full target path, and the
--     client's step_definition_hash; a success of a definition is counted in
--     jr_step_definition_successes, which begin_step reads;
--   * takes a value of jr_step_rewards_id_seq only for a step it inserts, and of the history's
--     identity only for an event it stores: stale and duplicate events take none;
--   * never shows a row in an error: a step row that breaks a constraint (one written before the
--     ledger's NOT VALID CHECKs) fails with the step, the constraint and its SQLSTATE, no DETAIL.
-- A pending marker opens an attempt; an outcome (success, failed) closes it and counts it in
-- attempts, and a failure in failed_attempts too.
-- pgspot PS002: OR REPLACE, as make migrate applies this file again when it changes; a function
-- of this name that another role owns is refused first (README, Objects found in place).
CREATE OR REPLACE FUNCTION public.record_step(
    task_id integer,
    step_number integer,
    step_type text,
    target_file text,
    execution_result text,
    execution_time_ms integer,
    error_detail text DEFAULT NULL,
    recorded_at timestamptz DEFAULT NULL,
    event_id uuid DEFAULT NULL,
    executor text DEFAULT NULL,
    step_definition_hash text DEFAULT NULL
)
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    step_type_max CONSTANT integer := 30;     -- jr_step_rewards.step_type is VARCHAR(30)
    target_file_max CONSTANT integer := 500;  -- jr_step_rewards.target_file is VARCHAR(500)
    error_detail_max CONSTANT integer := 16384;
    executor_max CONSTANT integer := 200;
    missing text;
    -- Event time decides which event is newest. A time in the future (a clock running fast) is
    -- taken as now, so no event can hold a step's state against every later one.
    event_time timestamptz := least(coalesce(record_step.recorded_at, clock_timestamp()), clock_timestamp());
    counts integer := CASE WHEN record_step.execution_result = 'pending' THEN 0 ELSE 1 END;
    counts_failed integer := CASE WHEN record_step.execution_result = 'failed' THEN 1 ELSE 0 END;
    content_hash text;
    stored_target text := public.jr_elide_middle(record_step.target_file, target_file_max);
    stored_error text := public.jr_elide_middle(record_step.error_detail, error_detail_max);
    history_attempt integer;
    attempts_after integer;
    history_id bigint;
    owner_task integer;
    owner_step integer;
    outcome text;
    failed_state text;
    failed_table text;
    failed_constraint text;
    failed_column text;
BEGIN
    missing := CASE
        WHEN record_step.task_id IS NULL THEN 'task_id'
        WHEN record_step.step_number IS NULL THEN 'step_number'
        WHEN record_step.step_type IS NULL THEN 'step_type'
        WHEN record_step.execution_result IS NULL THEN 'execution_result'
    END;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'record_step: % must not be NULL', missing
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF record_step.step_number < 0 THEN
        RAISE EXCEPTION 'record_step: step_number must be 0 or more, got %', record_step.step_number
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    IF record_step.execution_time_ms < 0 THEN
        RAISE EXCEPTION 'record_step: execution_time_ms must be 0 or more, got %', record_step.execution_time_ms
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    IF NOT isfinite(event_time) THEN
        RAISE EXCEPTION 'record_step: recorded_at must be a finite time, got %', record_step.recorded_at
            USING ERRCODE = 'datetime_field_overflow';
    END IF;
    IF record_step.execution_result NOT IN ('pending', 'success', 'failed') THEN
        RAISE EXCEPTION 'record_step: execution_result must be pending, success or failed, got %',
                quote_literal(public.jr_elide_middle(record_step.execution_result, 80))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF record_step.step_definition_hash !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'record_step: step_definition_hash must be 64 lowercase hex digits (a SHA-256), got %',
                quote_literal(public.jr_elide_middle(record_step.step_definition_hash, 80))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF btrim(record_step.step_type) = '' THEN
        RAISE EXCEPTION 'record_step: step_type must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(record_step.step_type) > step_type_max THEN
        RAISE EXCEPTION 'record_step: step_type % is % characters, more than the % allowed',
                quote_literal(public.jr_elide_middle(record_step.step_type, 80)),
                length(record_step.step_type), step_type_max
            USING ERRCODE = 'string_data_right_truncation';
    END IF;

    content_hash := public.jr_step_content_hash(
        record_step.task_id, record_step.step_number, record_step.step_type, record_step.target_file);

    -- History first: its unique event_id makes a concurrent replay of the same event wait here and
    -- then stop, before it can count anything. Its attempt number is read from the step's row in
    -- the same statement, and checked after the write below. A replay already stored is found by
    -- NOT EXISTS before a row is formed, so it takes no value of the history's identity; only a
    -- replay racing its own first delivery still does, in ON CONFLICT.
    INSERT INTO public.jr_step_attempts AS a (
        event_id, task_id, step_number, attempt_number, step_type, target_file, step_content_hash,
        step_definition_hash, execution_result, execution_time_ms, error_detail, executor, recorded_at)
    SELECT
        coalesce(record_step.event_id, gen_random_uuid()), record_step.task_id, record_step.step_number,
        coalesce((SELECT r.attempts FROM public.jr_step_rewards r
                  WHERE r.task_id = record_step.task_id AND r.step_number = record_step.step_number), 0) + 1,
        record_step.step_type, stored_target, content_hash, record_step.step_definition_hash,
        record_step.execution_result, record_step.execution_time_ms, stored_error,
        coalesce(public.jr_elide_middle(record_step.executor, executor_max), session_user), event_time
    WHERE NOT EXISTS (SELECT FROM public.jr_step_attempts seen WHERE seen.event_id = record_step.event_id)
    ON CONFLICT ON CONSTRAINT jr_step_attempts_event_id_key DO NOTHING
    RETURNING a.id, a.attempt_number INTO history_id, history_attempt;

    IF history_id IS NULL THEN
        SELECT a.task_id, a.step_number INTO owner_task, owner_step
        FROM public.jr_step_attempts a
        WHERE a.event_id = record_step.event_id;
        IF owner_task IS DISTINCT FROM record_step.task_id OR owner_step IS DISTINCT FROM record_step.step_number THEN
            RAISE EXCEPTION 'record_step: event_id % was already recorded for task % step %, not task % step %',
                    record_step.event_id, owner_task, owner_step, record_step.task_id, record_step.step_number
                USING ERRCODE = 'unique_violation';
        END IF;
        RETURN 'duplicate';
    END IF;

    -- The step's row, in the order that makes the common cases one statement each: an event at
    -- least as new as the row updates it; a new step is inserted (ON CONFLICT so a concurrent
    -- first event of the same step cannot fail us); an older event only counts its attempt. The
    -- insert is tried before the stale update because only stale events (replays) pay for the
    -- extra statement that way. It inserts only when NOT EXISTS finds no row, so an event of a step
    -- the ledger has takes no value of the 32-bit jr_step_rewards_id_seq, a stale one included;
    -- only the loser of a race between two first events of one step still takes one, in ON CONFLICT.
    -- The handler keeps the row out of the error: PostgreSQL's DETAIL "Failing row contains (...)"
    -- would show the step's row, a legacy error_detail and all, to a caller who may not read the
    -- table. Its price: the block is a subtransaction, so a write takes a second transaction id.
    BEGIN
        LOOP
            UPDATE public.jr_step_rewards AS r
            SET step_type = record_step.step_type,
                target_file = stored_target,
                step_content_hash = content_hash,
                step_definition_hash = record_step.step_definition_hash,
                execution_result = record_step.execution_result,
                execution_time_ms = record_step.execution_time_ms,
                error_detail = stored_error,
                attempts = r.attempts + counts,
                failed_attempts = r.failed_attempts + counts_failed,
                last_event_at = event_time,
                updated_at = now()
            WHERE r.task_id = record_step.task_id AND r.step_number = record_step.step_number
              AND r.last_event_at <= event_time
            RETURNING r.attempts INTO attempts_after;
            IF FOUND THEN
                outcome := 'recorded';
                EXIT;
            END IF;

            INSERT INTO public.jr_step_rewards AS r (
                task_id, step_number, step_type, target_file, step_content_hash, step_definition_hash,
                execution_result, execution_time_ms, error_detail, attempts, failed_attempts, last_event_at)
            SELECT
                record_step.task_id, record_step.step_number, record_step.step_type, stored_target,
                content_hash, record_step.step_definition_hash, record_step.execution_result,
                record_step.execution_time_ms, stored_error, counts, counts_failed, event_time
            WHERE NOT EXISTS (SELECT FROM public.jr_step_rewards known
                              WHERE known.task_id = record_step.task_id AND known.step_number = record_step.step_number)
            ON CONFLICT ON CONSTRAINT jr_step_rewards_task_id_step_number_key DO NOTHING
            RETURNING r.attempts INTO attempts_after;
            IF FOUND THEN
                outcome := 'recorded';
                EXIT;
            END IF;

            UPDATE public.jr_step_rewards AS r
            SET attempts = r.attempts + counts,
                failed_attempts = r.failed_attempts + counts_failed
            WHERE r.task_id = record_step.task_id AND r.step_number = record_step.step_number
              AND r.last_event_at > event_time
            RETURNING r.attempts INTO attempts_after;
            IF FOUND THEN
                outcome := 'stale';
                EXIT;
            END IF;
        END LOOP;
    EXCEPTION WHEN integrity_constraint_violation OR with_check_option_violation THEN
        GET STACKED DIAGNOSTICS failed_state = RETURNED_SQLSTATE, failed_table = TABLE_NAME,
            failed_constraint = CONSTRAINT_NAME, failed_column = COLUMN_NAME;
        PERFORM public.jr_raise_row_violation('record_step'::text, record_step.task_id, record_step.step_number, failed_state, failed_table,
            failed_constraint, failed_column);
    END;

    -- Every success of a definition counts, a stale one too: it happened. A duplicate never gets here.
    IF record_step.execution_result = 'success' AND record_step.step_definition_hash IS NOT NULL THEN
        INSERT INTO public.jr_step_definition_successes AS s (task_id, step_definition_hash, successes, last_success_at)
        VALUES (record_step.task_id, record_step.step_definition_hash, 1, event_time)
        ON CONFLICT ON CONSTRAINT jr_step_definition_successes_pkey DO UPDATE
        SET successes = s.successes + 1, last_success_at = greatest(s.last_success_at, excluded.last_success_at);
    END IF;

    -- Only when a concurrent event of the same step got in between the read above and the write.
    IF attempts_after + 1 - counts <> history_attempt THEN
        UPDATE public.jr_step_attempts AS a
        SET attempt_number = attempts_after + 1 - counts
        WHERE a.id = history_id;
    END IF;
    RETURN outcome;
END
$$;

COMMENT ON FUNCTION public.record_step(integer, integer, text, text, text, integer, text, timestamptz, uuid, text, text) IS
    'Records one step event (pending, success or failed): appends it to jr_step_attempts once per event_id and updates jr_step_rewards unless a newer event already did. Returns recorded, stale or duplicate.';

REVOKE ALL ON FUNCTION public.record_step(integer, integer, text, text, text, integer, text, timestamptz, uuid, text, text) FROM PUBLIC;
