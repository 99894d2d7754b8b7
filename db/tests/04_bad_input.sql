-- Bad input to the SQL API ends in a clear message and a stable SQLSTATE, and the table's CHECKs
-- stop what bypasses the functions.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(21);

SELECT throws_ok($$SELECT public.record_step(NULL, 1, 'bash', NULL, 'success', 1)$$,
    '22004', 'record_step: task_id must not be NULL', 'NULL task_id: 22004');
SELECT throws_ok($$SELECT public.record_step(-900101, NULL, 'bash', NULL, 'success', 1)$$,
    '22004', 'record_step: step_number must not be NULL', 'NULL step_number: 22004');
SELECT throws_ok($$SELECT public.record_step(-900101, 1, NULL, NULL, 'success', 1)$$,
    '22004', 'record_step: step_type must not be NULL', 'NULL step_type: 22004');
SELECT throws_ok($$SELECT public.record_step(-900101, 1, 'bash', NULL, NULL, 1)$$,
    '22004', 'record_step: execution_result must not be NULL', 'NULL execution_result: 22004');
SELECT throws_ok($$SELECT public.record_step(-900101, -1, 'bash', NULL, 'success', 1)$$,
    '22003', 'record_step: step_number must be 0 or more, got -1', 'negative step_number: 22003');
SELECT throws_ok($$SELECT public.record_step(-900101, 1, 'bash', NULL, 'success', -5)$$,
    '22003', 'record_step: execution_time_ms must be 0 or more, got -5', 'negative execution_time_ms: 22003');
SELECT throws_ok($$SELECT public.record_step(-900101, 1, 'bash', NULL, 'done', 1)$$,
    '22023', 'record_step: execution_result must be pending, success or failed, got ''done''', 'unknown result: 22023');
SELECT throws_ok($$SELECT public.record_step(-900101, 1, 'bash', NULL, 'SUCCESS', 1)$$,
    '22023', 'record_step: execution_result must be pending, success or failed, got ''SUCCESS''',
    'results are lower case: 22023');
SELECT throws_ok($$SELECT public.record_step(-900101, 1, '', NULL, 'success', 1)$$,
    '22023', 'record_step: step_type must not be empty', 'empty step_type: 22023');
SELECT throws_ok($$SELECT public.record_step(-900101, 1, '   ', NULL, 'success', 1)$$,
    '22023', 'record_step: step_type must not be empty', 'blank step_type: 22023');
SELECT throws_ok($$SELECT public.record_step(-900101, 1, repeat('s', 31), NULL, 'success', 1)$$,
    '22001', 'record_step: step_type ''sssssssssssssssssssssssssssssss'' is 31 characters, more than the 30 allowed',
    'a step type one character too long: 22001');
SELECT throws_ok($$SELECT public.record_step(-900101, 1, repeat('ß', 5000), NULL, 'success', 1)$$,
    '22001', NULL, 'a huge step type: 22001');
SELECT throws_ok($$SELECT public.record_step(-900101, 2147483648, 'bash', NULL, 'success', 1)$$,
    '42883', NULL, 'a step number beyond integer matches no record_step: 42883');
SELECT throws_ok($$SELECT public.step_succeeded(NULL, 1)$$,
    '22004', 'step_succeeded: task_id must not be NULL', 'step_succeeded: NULL task_id: 22004');
SELECT throws_ok($$SELECT public.step_succeeded(-900101, NULL)$$,
    '22004', 'step_succeeded: step_number must not be NULL', 'step_succeeded: NULL step_number: 22004');
SELECT is_empty($$SELECT FROM public.jr_step_rewards WHERE task_id = -900101$$,
    'rejected calls leave no state behind');

-- The limits themselves are accepted: a 30-character type, step 0, time 0, the largest integers.
SELECT is(public.record_step(-900101, 0, repeat('s', 30), NULL, 'success', 0), 'recorded',
    'a 30-character step type, step 0 and time 0 are accepted');
SELECT is(public.record_step(-2147483648, 2147483647, 'bash', NULL, 'failed', 2147483647), 'recorded',
    'the integer limits are accepted');

-- What bypasses record_step still meets the table's CHECKs.
SELECT throws_ok($$UPDATE public.jr_step_rewards SET execution_result = 'done' WHERE task_id = -900101$$,
    '23514', NULL, 'a direct write of an unknown result violates a CHECK');
SELECT throws_ok($$UPDATE public.jr_step_rewards SET step_number = -1 WHERE task_id = -900101$$,
    '23514', NULL, 'a direct write of a negative step number violates a CHECK');
SELECT throws_ok($$UPDATE public.jr_step_rewards SET execution_time_ms = -1 WHERE task_id = -900101$$,
    '23514', NULL, 'a direct write of a negative time violates a CHECK');

SELECT * FROM finish();
ROLLBACK;
