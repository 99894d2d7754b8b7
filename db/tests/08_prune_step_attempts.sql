-- prune_step_attempts: retention for the history, one batch per call, never the current state.
-- Safe on a production database: the test's rows are dated 1900 and the cut-off is 1950, so no
-- real row is ever old enough to be touched.
BEGIN;
SET LOCAL client_min_messages = warning;
\ir load_pgtap.psql
SELECT plan(17);

SELECT has_function('public', 'prune_step_attempts', ARRAY['interval', 'integer'], 'prune_step_attempts exists');
SELECT function_returns('public', 'prune_step_attempts', ARRAY['interval', 'integer'], 'bigint',
    'prune_step_attempts returns bigint: how many rows it deleted');
SELECT is_definer('public', 'prune_step_attempts', ARRAY['interval', 'integer'], 'prune_step_attempts is SECURITY DEFINER');
SELECT function_privs_are('public', 'prune_step_attempts', ARRAY['interval', 'integer'], 'public', ARRAY[]::text[],
    'PUBLIC may not execute prune_step_attempts');
SELECT function_privs_are('public', 'prune_step_attempts', ARRAY['interval', 'integer'], 'jr_executor', ARRAY[]::text[],
    'jr_executor may not execute prune_step_attempts: a DBA tool');
SELECT function_privs_are('public', 'prune_step_attempts', ARRAY['interval', 'integer'], 'jr_reader', ARRAY[]::text[],
    'jr_reader may not execute prune_step_attempts');

-- Six events over two steps; four of them stored in 1900.
SELECT public.record_step(-900501, 1, 'bash', NULL, 'pending', NULL);
SELECT public.record_step(-900501, 1, 'bash', NULL, 'failed', 5, 'boom');
SELECT public.record_step(-900501, 1, 'bash', NULL, 'success', 5);
SELECT public.record_step(-900501, 2, 'bash', NULL, 'pending', NULL);
SELECT public.record_step(-900501, 2, 'bash', NULL, 'success', 5);
SELECT public.record_step(-900501, 3, 'bash', NULL, 'success', 5);
UPDATE public.jr_step_attempts SET received_at = '1900-01-01'
WHERE task_id = -900501 AND (step_number = 1 OR execution_result = 'pending');
CREATE TEMP TABLE state_before AS SELECT * FROM public.jr_step_rewards WHERE task_id = -900501;
SELECT now() - timestamptz '1950-01-01' AS age \gset

SELECT is(public.prune_step_attempts(:'age', 3), 3::bigint, 'a call deletes one batch: 3 of the 4 old rows');
SELECT is(public.prune_step_attempts(:'age', 3), 1::bigint, 'the next call deletes the last old row');
SELECT is(public.prune_step_attempts(:'age', 3), 0::bigint, 'then there is nothing left to delete');
SELECT results_eq(
    $$SELECT step_number, execution_result::text FROM public.jr_step_attempts WHERE task_id = -900501 ORDER BY id$$,
    $$VALUES (2, 'success'), (3, 'success')$$,
    'the rows stored since the cut-off are kept');
SELECT set_eq(
    $$SELECT * FROM public.jr_step_rewards WHERE task_id = -900501$$,
    $$SELECT * FROM state_before$$,
    'the current state in jr_step_rewards is untouched');
SELECT is(public.prune_step_attempts(:'age'), 0::bigint, 'the batch size defaults (to 10000)');

SELECT throws_ok($$SELECT public.prune_step_attempts(NULL)$$,
    '22004', 'prune_step_attempts: older_than must not be NULL', 'NULL age: 22004');
SELECT throws_ok($$SELECT public.prune_step_attempts('1 day', NULL)$$,
    '22004', 'prune_step_attempts: batch_size must not be NULL', 'NULL batch size: 22004');
SELECT throws_ok($$SELECT public.prune_step_attempts('-1 day')$$,
    '22023', 'prune_step_attempts: older_than must not be negative, got -1 days', 'a negative age: 22023');
SELECT throws_ok($$SELECT public.prune_step_attempts('1 day', 0)$$,
    '22023', 'prune_step_attempts: batch_size must be 1 or more, got 0', 'a batch size of 0: 22023');

SELECT pg_has_role('jr_executor', 'MEMBER') AS may_become_executor \gset
\if :may_become_executor
SET LOCAL ROLE jr_executor;
SELECT throws_ok($$SELECT public.prune_step_attempts('1 day')$$, '42501', NULL,
    'as jr_executor, pruning is denied');
RESET ROLE;
\else
SELECT skip('the tester may not SET ROLE jr_executor', 1);
\endif

SELECT * FROM finish();
ROLLBACK;
