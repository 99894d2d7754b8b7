-- set_step_reward(task_id, step_number, implicit_reward, verified_outcome, retry_decision): the
-- reward work's write into a step's row. A NULL argument leaves its field as it is; updated_at moves.
-- Vocabularies (also CHECKs on jr_step_rewards, migration 0004):
--   verified_outcome  correct, incorrect, partial, inconclusive
--   retry_decision    skip, retry, revert, abandon, escalate
-- Errors: NULL keys or nothing to set 22004, NaN or infinite reward 22003, a word outside the
-- vocabulary 22023, a step the ledger does not have P0002. A step row that breaks a constraint (one
-- written before the ledger's NOT VALID CHECKs) fails with that constraint's SQLSTATE (23514 for a
-- CHECK) and a message naming the step and the constraint, never the row's contents.
-- pgspot PS002: OR REPLACE, as make migrate applies this file again when it changes; a function
-- of this name that another role owns is refused first (README, Objects found in place).
CREATE OR REPLACE FUNCTION public.set_step_reward(
    task_id integer,
    step_number integer,
    implicit_reward double precision,
    verified_outcome text DEFAULT NULL,
    retry_decision text DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    failed_state text;
    failed_table text;
    failed_constraint text;
    failed_column text;
BEGIN
    IF set_step_reward.task_id IS NULL OR set_step_reward.step_number IS NULL THEN
        RAISE EXCEPTION 'set_step_reward: % must not be NULL',
                CASE WHEN set_step_reward.task_id IS NULL THEN 'task_id' ELSE 'step_number' END
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF num_nulls(set_step_reward.implicit_reward, set_step_reward.verified_outcome, set_step_reward.retry_decision) = 3 THEN
        RAISE EXCEPTION 'set_step_reward: nothing to set; give implicit_reward, verified_outcome or retry_decision'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF set_step_reward.implicit_reward IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) THEN
        RAISE EXCEPTION 'set_step_reward: implicit_reward must be a finite number, got %', set_step_reward.implicit_reward
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    IF set_step_reward.verified_outcome NOT IN ('correct', 'incorrect', 'partial', 'inconclusive') THEN
        RAISE EXCEPTION 'set_step_reward: verified_outcome must be correct, incorrect, partial or inconclusive, got %',
                quote_literal(public.jr_elide_middle(set_step_reward.verified_outcome, 80))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF set_step_reward.retry_decision NOT IN ('skip', 'retry', 'revert', 'abandon', 'escalate') THEN
        RAISE EXCEPTION 'set_step_reward: retry_decision must be skip, retry, revert, abandon or escalate, got %',
                quote_literal(public.jr_elide_middle(set_step_reward.retry_decision, 80))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The handler keeps the row out of the error: PostgreSQL's DETAIL "Failing row contains (...)"
    -- would show the step's row, a legacy error_detail and all, to a caller who may not read the
    -- table. Its price: the block is a subtransaction, so the write takes a second transaction id.
    BEGIN
        UPDATE public.jr_step_rewards AS r
        SET implicit_reward = coalesce(set_step_reward.implicit_reward, r.implicit_reward),
            verified_outcome = coalesce(set_step_reward.verified_outcome, r.verified_outcome),
            retry_decision = coalesce(set_step_reward.retry_decision, r.retry_decision),
            updated_at = now()
        WHERE r.task_id = set_step_reward.task_id AND r.step_number = set_step_reward.step_number;
    EXCEPTION WHEN integrity_constraint_violation OR with_check_option_violation THEN
        GET STACKED DIAGNOSTICS failed_state = RETURNED_SQLSTATE, failed_table = TABLE_NAME,
            failed_constraint = CONSTRAINT_NAME, failed_column = COLUMN_NAME;
        PERFORM public.jr_raise_row_violation('set_step_reward'::text, set_step_reward.task_id, set_step_reward.step_number, failed_state, failed_table,
            failed_constraint, failed_column);
    END;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'set_step_reward: task % step % is not in the ledger', set_step_reward.task_id, set_step_reward.step_number
            USING ERRCODE = 'no_data_found';
    END IF;
END
$$;

COMMENT ON FUNCTION public.set_step_reward(integer, integer, double precision, text, text) IS
    'Writes a step''s implicit_reward, verified_outcome and retry_decision (NULL leaves a field unchanged) and moves updated_at. Vocabularies: verified_outcome correct, incorrect, partial, inconclusive; retry_decision skip, retry, revert, abandon, escalate.';

REVOKE ALL ON FUNCTION public.set_step_reward(integer, integer, double precision, text, text) FROM PUBLIC;
