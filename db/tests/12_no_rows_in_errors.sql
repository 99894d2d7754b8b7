-- No rows in errors. A seed-made database may hold step rows that break the CHECKs migrate added
-- NOT VALID; writing such a row fails, and PostgreSQL's DETAIL "Failing row contains (...)" would
-- hand the whole row, error_detail and all, to jr_executor, which may not read the table. The
-- functions fail instead with the step, the constraint and its SQLSTATE, and no DETAIL.
--
-- The legacy rows need their CHECKs dropped for a moment, which locks jr_step_rewards: that part
-- runs in a savepoint, rolled back as soon as the errors are captured (into a psql variable, which
-- outlives the rollback), so the lock is held for milliseconds, never for the whole file. Other
-- sessions never see the dropped CHECKs. The lock is waited for at most 1 s (lock_timeout), so the
-- executors' writes queued behind it stay within the recorder's 2 s deadline; on a database where
-- a long transaction holds the table, the file fails with a lock timeout instead. The rows take
-- explicit negative ids, so no value of jr_step_rewards_id_seq is used. The calls run as the
-- tester: a SECURITY DEFINER function builds the DETAIL with its owner's rights, whoever calls it.
BEGIN;
SET LOCAL client_min_messages = warning;
\ir load_pgtap.psql
SELECT plan(14);

-- The error a call raises, as a client sees it; NULLs when it raises none.
CREATE FUNCTION pg_temp.error_of(call text, OUT error_code text, OUT error_message text, OUT error_detail text,
                                 OUT error_hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE call;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS error_code = RETURNED_SQLSTATE, error_message = MESSAGE_TEXT,
        error_detail = PG_EXCEPTION_DETAIL, error_hint = PG_EXCEPTION_HINT;
END
$$;

SAVEPOINT legacy_rows;
SET LOCAL lock_timeout = '1s';
ALTER TABLE public.jr_step_rewards
    DROP CONSTRAINT jr_step_rewards_result_known,
    DROP CONSTRAINT jr_step_rewards_verified_outcome_known;
INSERT INTO public.jr_step_rewards (id, task_id, step_number, step_type, execution_result, verified_outcome,
                                    error_detail, attempts, failed_attempts, last_event_at)
VALUES (-900601, -900601, 1, 'bash', 'error', NULL, 'curl -u admin:LEGACY-SECRET-123 failed', 1, 0, '2020-01-01 12:00+00'),
       (-900602, -900601, 2, 'bash', 'failed', 'wrong', 'curl -u admin:LEGACY-SECRET-456 failed', 1, 1, '2020-01-01 12:00+00');
ALTER TABLE public.jr_step_rewards
    ADD CONSTRAINT jr_step_rewards_result_known CHECK (execution_result IN ('pending', 'success', 'failed')) NOT VALID,
    ADD CONSTRAINT jr_step_rewards_verified_outcome_known
        CHECK (verified_outcome IN ('correct', 'incorrect', 'partial', 'inconclusive')) NOT VALID;

SELECT jsonb_agg(jsonb_build_object('n', c.n, 'case_name', c.case_name, 'expected', c.expected) || to_jsonb(e) ORDER BY c.n)
    AS captured
FROM (VALUES
    (1, 'control: a direct UPDATE, outside the functions',
     $$UPDATE public.jr_step_rewards SET attempts = attempts WHERE id = -900601$$, NULL),
    (2, 'set_step_reward on a row that breaks a CHECK',
     $$SELECT public.set_step_reward(-900601, 1, 0.5)$$,
     'set_step_reward: task -900601 step 1: its row in jr_step_rewards breaks constraint jr_step_rewards_result_known'),
    (3, 'record_step, a stale event of that row',
     $$SELECT public.record_step(-900601, 1, 'bash', NULL, 'failed', 1, NULL, '2000-01-01 00:00+00')$$,
     'record_step: task -900601 step 1: its row in jr_step_rewards breaks constraint jr_step_rewards_result_known'),
    (4, 'record_step, a newer event of a row whose verified_outcome breaks a CHECK',
     $$SELECT public.record_step(-900601, 2, 'bash', NULL, 'success', 1)$$,
     'record_step: task -900601 step 2: its row in jr_step_rewards breaks constraint jr_step_rewards_verified_outcome_known'),
    (5, 'begin_step, the pending marker of that row',
     $$SELECT public.begin_step(-900601, 2, 'bash', NULL)$$,
     'record_step: task -900601 step 2: its row in jr_step_rewards breaks constraint jr_step_rewards_verified_outcome_known')
) c(n, case_name, call, expected)
CROSS JOIN LATERAL pg_temp.error_of(c.call) e \gset
ROLLBACK TO SAVEPOINT legacy_rows;
SELECT is_empty(
    $$SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'public.jr_step_rewards'::regclass$$,
    'the savepoint''s rollback released the lock on jr_step_rewards at once');

CREATE TEMP TABLE captured AS
SELECT * FROM jsonb_to_recordset(:'captured')
    AS x(n int, case_name text, expected text, error_code text, error_message text, error_detail text, error_hint text);

SELECT ok((SELECT error_code = '23514' AND error_detail LIKE '%LEGACY-SECRET-123%' FROM captured WHERE expected IS NULL),
    'control: PostgreSQL itself puts the legacy row, secret and all, in the DETAIL');
SELECT is(error_code, '23514', case_name || ': check_violation, the constraint''s own SQLSTATE')
FROM captured WHERE expected IS NOT NULL ORDER BY n;
SELECT is(error_message, expected, case_name || ': the message names the step and the constraint')
FROM captured WHERE expected IS NOT NULL ORDER BY n;
SELECT ok(error_detail = '' AND concat(error_message, error_detail, error_hint) NOT LIKE '%LEGACY-SECRET%',
          case_name || ': no DETAIL, and nothing of the row in message or hint')
FROM captured WHERE expected IS NOT NULL ORDER BY n;

SELECT * FROM finish();
ROLLBACK;
