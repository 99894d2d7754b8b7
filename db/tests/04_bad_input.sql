-- Bad input to the SQL API, table-driven. Each case ends in a clear error with a stable SQLSTATE,
-- or is accepted with a documented clean-up (long text cut in the middle with a marker, the hash
-- always of the full path), or is stored verbatim with no effect (SQL-injection strings).
-- The Python side has its own table in tests/test_bad_input.py.
BEGIN;
SET LOCAL client_min_messages = warning;
\ir load_pgtap.psql
SELECT plan(60);

-- Part 1: refused. (case, call, SQLSTATE, message or NULL when only the code is checked)
CREATE TEMP TABLE refused (case_name text, call text, sqlstate text, message text);
INSERT INTO refused VALUES
    ('record_step: NULL task_id', $$SELECT public.record_step(NULL, 1, 'bash', NULL, 'success', 1)$$,
     '22004', 'record_step: task_id must not be NULL'),
    ('record_step: NULL step_number', $$SELECT public.record_step(-900101, NULL, 'bash', NULL, 'success', 1)$$,
     '22004', 'record_step: step_number must not be NULL'),
    ('record_step: NULL step_type', $$SELECT public.record_step(-900101, 1, NULL, NULL, 'success', 1)$$,
     '22004', 'record_step: step_type must not be NULL'),
    ('record_step: NULL execution_result', $$SELECT public.record_step(-900101, 1, 'bash', NULL, NULL, 1)$$,
     '22004', 'record_step: execution_result must not be NULL'),
    ('record_step: negative step_number', $$SELECT public.record_step(-900101, -1, 'bash', NULL, 'success', 1)$$,
     '22003', 'record_step: step_number must be 0 or more, got -1'),
    ('record_step: negative execution_time_ms', $$SELECT public.record_step(-900101, 1, 'bash', NULL, 'success', -5)$$,
     '22003', 'record_step: execution_time_ms must be 0 or more, got -5'),
    ('record_step: unknown result', $$SELECT public.record_step(-900101, 1, 'bash', NULL, 'done', 1)$$,
     '22023', 'record_step: execution_result must be pending, success or failed, got ''done'''),
    ('record_step: results are lower case', $$SELECT public.record_step(-900101, 1, 'bash', NULL, 'SUCCESS', 1)$$,
     '22023', 'record_step: execution_result must be pending, success or failed, got ''SUCCESS'''),
    ('record_step: SQL injection as the result',
     $$SELECT public.record_step(-900101, 1, 'bash', NULL, 'success''); DROP TABLE public.jr_step_rewards; --', 1)$$,
     '22023', 'record_step: execution_result must be pending, success or failed, got ''success''''); DROP TABLE public.jr_step_rewards; --'''),
    ('record_step: empty step_type', $$SELECT public.record_step(-900101, 1, '', NULL, 'success', 1)$$,
     '22023', 'record_step: step_type must not be empty'),
    ('record_step: blank step_type', $$SELECT public.record_step(-900101, 1, '   ', NULL, 'success', 1)$$,
     '22023', 'record_step: step_type must not be empty'),
    ('record_step: step_type one character too long', $$SELECT public.record_step(-900101, 1, repeat('s', 31), NULL, 'success', 1)$$,
     '22001', 'record_step: step_type ''sssssssssssssssssssssssssssssss'' is 31 characters, more than the 30 allowed'),
    ('record_step: multibyte step_type one character too long', $$SELECT public.record_step(-900101, 1, repeat('é', 31), NULL, 'success', 1)$$,
     '22001', NULL),
    ('record_step: a huge step_type', $$SELECT public.record_step(-900101, 1, repeat('ß', 5000), NULL, 'success', 1)$$,
     '22001', NULL),
    ('record_step: step_number beyond integer', $$SELECT public.record_step(-900101, 2147483648, 'bash', NULL, 'success', 1)$$,
     '42883', NULL),
    ('record_step: task_id beyond integer', $$SELECT public.record_step(2147483648, 1, 'bash', NULL, 'success', 1)$$,
     '42883', NULL),
    ('record_step: execution_time_ms beyond integer', $$SELECT public.record_step(-900101, 1, 'bash', NULL, 'success', 2147483648)$$,
     '42883', NULL),
    ('record_step: an event_id that is not a uuid',
     $$SELECT public.record_step(-900101, 1, 'bash', NULL, 'success', 1, NULL, NULL, 'not-a-uuid')$$, '22P02', NULL),
    ('record_step: a recorded_at that is not a time',
     $$SELECT public.record_step(-900101, 1, 'bash', NULL, 'success', 1, NULL, 'yesterday-ish')$$, '22007', NULL),
    ('record_step: a NUL character in text (the Python recorder strips them first)',
     $$SELECT public.record_step(-900101, 1, 'bash', E'a\000b', 'success', 1)$$, '22021', NULL),
    ('record_step: invalid UTF-8 in text (the Python recorder replaces it first)',
     $$SELECT public.record_step(-900101, 1, 'bash', convert_from('\xfffe'::bytea, 'UTF8'), 'success', 1)$$, '22021', NULL),
    ('step_succeeded: NULL task_id', $$SELECT public.step_succeeded(NULL, 1)$$,
     '22004', 'step_succeeded: task_id must not be NULL'),
    ('step_succeeded: NULL step_number', $$SELECT public.step_succeeded(-900101, NULL)$$,
     '22004', 'step_succeeded: step_number must not be NULL'),
    ('set_step_reward: NaN', $$SELECT public.set_step_reward(-900101, 0, 'NaN')$$, '22003', NULL),
    ('set_step_reward: Infinity', $$SELECT public.set_step_reward(-900101, 0, 'Infinity')$$, '22003', NULL),
    ('set_step_reward: -Infinity', $$SELECT public.set_step_reward(-900101, 0, '-Infinity')$$, '22003', NULL),
    ('set_step_reward: SQL injection as verified_outcome',
     $$SELECT public.set_step_reward(-900101, 0, 1, 'correct''; DELETE FROM public.jr_step_rewards; --')$$, '22023', NULL),
    ('set_step_reward: an unknown step', $$SELECT public.set_step_reward(-900101, 999, 1)$$, 'P0002', NULL),
    ('record_exploration: NaN novelty_score', $$SELECT public.record_exploration('jr', 'task', 'NaN')$$, '22003', NULL),
    ('record_exploration: jr_type one character too long', $$SELECT public.record_exploration(repeat('j', 51), 'task')$$,
     '22001', NULL),
    ('record_exploration: unknown outcome', $$SELECT public.record_exploration('jr', 'task', 1, 1, 'won')$$, '22023', NULL),
    ('prune_step_attempts: a negative age', $$SELECT public.prune_step_attempts('-1 day')$$, '22023', NULL);

-- A step the reward cases can point at, and an event another step cannot reuse.
SELECT public.record_step(-900101, 0, 'bash', NULL, 'success', 1, NULL, NULL, 'c0000000-0000-4000-8000-000000000001');
INSERT INTO refused VALUES
    ('record_step: an event_id already recorded for another step',
     $$SELECT public.record_step(-900101, 5, 'bash', NULL, 'success', 1, NULL, NULL, 'c0000000-0000-4000-8000-000000000001')$$,
     '23505', 'record_step: event_id c0000000-0000-4000-8000-000000000001 was already recorded for task -900101 step 0, not task -900101 step 5');

SELECT throws_ok(call, sqlstate, message, case_name || ': ' || sqlstate) FROM refused ORDER BY case_name;
SELECT is_empty($$SELECT FROM public.jr_step_rewards WHERE task_id = -900101 AND step_number <> 0$$,
    'refused calls leave no state behind');

-- Part 2: accepted, with a documented clean-up or verbatim. (case, target path, error text)
CREATE TEMP TABLE accepted (step integer, case_name text, target text, error text);
INSERT INTO accepted VALUES
    (11, 'a path of exactly 500 ASCII characters', '/p/' || repeat('a', 497), NULL),
    (12, 'a path of 501 ASCII characters', '/p/' || repeat('a', 498), NULL),
    (13, 'a path of 5000 ASCII characters', '/p/' || repeat('a', 4997), NULL),
    (14, 'a path of exactly 500 multibyte characters', '/p/' || repeat('é', 497), NULL),
    (15, 'a path of 501 multibyte characters', '/p/' || repeat('é', 498), NULL),
    (16, 'a path of 5000 multibyte characters', '/p/' || repeat('日', 4997), NULL),
    (17, 'an empty path and an empty error', '', ''),
    (18, '10 MB of error text', 'big.log', repeat('e', 10 * 1024 * 1024)),
    (19, 'SQL injection in the path and the error', $$x'); DROP TABLE public.jr_step_rewards; --$$,
     $$'; DELETE FROM public.jr_step_attempts WHERE true; --$$);
SELECT is(public.record_step(-900101, step, 'search_replace', target, 'failed', 1, error), 'recorded', case_name || ': accepted')
FROM accepted ORDER BY step;

SELECT results_eq(
    $$SELECT r.step_number, length(r.target_file), r.target_file = a.target, r.target_file LIKE '%…[% characters cut]…%'
      FROM public.jr_step_rewards r JOIN accepted a ON a.step = r.step_number
      WHERE r.task_id = -900101 AND r.step_number BETWEEN 11 AND 16 ORDER BY 1$$,
    $$VALUES (11, 500, true, false), (12, 500, false, true), (13, 500, false, true),
             (14, 500, true, false), (15, 500, false, true), (16, 500, false, true)$$,
    'paths up to 500 characters are kept whole; longer ones are cut to 500 with a marker, by characters');
SELECT is_empty(
    $$SELECT r.step_number FROM public.jr_step_rewards r JOIN accepted a ON a.step = r.step_number
      WHERE r.task_id = -900101 AND r.step_content_hash IS DISTINCT FROM
            public.jr_step_content_hash(-900101, a.step, 'search_replace', a.target)$$,
    'every stored hash is of the full, uncut path');
SELECT results_eq(
    $$SELECT target_file::text, error_detail, step_content_hash::text <> public.jr_step_content_hash(-900101, 17, 'search_replace', NULL)
      FROM public.jr_step_rewards WHERE task_id = -900101 AND step_number = 17$$,
    $$VALUES ('', '', true)$$,
    'empty strings stay empty strings, not NULL, and an empty path does not hash as a NULL one');
SELECT results_eq(
    $$SELECT length(error_detail) <= 16384, left(error_detail, 3), error_detail LIKE '%…[% characters cut]…%'
      FROM public.jr_step_rewards WHERE task_id = -900101 AND step_number = 18$$,
    $$VALUES (true, 'eee', true)$$,
    '10 MB of error text is cut to at most 16384 characters, with a marker');
SELECT results_eq(
    $$SELECT target_file::text, error_detail FROM public.jr_step_rewards WHERE task_id = -900101 AND step_number = 19$$,
    $$VALUES ($x$x'); DROP TABLE public.jr_step_rewards; --$x$, $x$'; DELETE FROM public.jr_step_attempts WHERE true; --$x$)$$,
    'SQL-injection strings are stored verbatim');

-- SQL injection in every other text field, stored verbatim with no effect.
SELECT is(public.record_step(-900101, 20, $$'; DROP TABLE x; --$$, NULL, 'success', 1, NULL, NULL, NULL,
        $$exec'); DROP TABLE public.jr_step_attempts; --$$), 'recorded', 'injection in step_type and executor: accepted');
SELECT results_eq(
    $$SELECT r.step_type::text, a.executor FROM public.jr_step_rewards r
      JOIN public.jr_step_attempts a USING (task_id, step_number) WHERE r.task_id = -900101 AND r.step_number = 20$$,
    $$VALUES ($x$'; DROP TABLE x; --$x$, $x$exec'); DROP TABLE public.jr_step_attempts; --$x$)$$,
    'step_type and executor are stored verbatim');
SELECT is(public.record_exploration($$jr'); DROP TABLE public.jr_exploration_log; --$$, $$t'; --$$) IS NOT NULL, true,
    'injection in jr_type and task_type: accepted');
SELECT is((SELECT count(*)::int FROM public.jr_exploration_log WHERE jr_type = $$jr'); DROP TABLE public.jr_exploration_log; --$$
                                                                AND task_type = $$t'; --$$), 1,
    'jr_type and task_type are stored verbatim');
SELECT is(public.set_step_reward(-900101, 0, -1e308)::text, '', 'the most negative finite reward is accepted');
SELECT ok(to_regclass('public.jr_step_rewards') IS NOT NULL AND to_regclass('public.jr_step_attempts') IS NOT NULL
          AND to_regclass('public.jr_exploration_log') IS NOT NULL, 'every table is still there');

-- The limits themselves.
SELECT is(public.record_step(-900101, 21, repeat('s', 30), NULL, 'success', 0), 'recorded',
    'a 30-character step type, time 0 are accepted');
SELECT is(public.record_step(-2147483648, 2147483647, 'bash', NULL, 'failed', 2147483647), 'recorded',
    'the integer limits are accepted');
SELECT is(public.record_step(-900101, 22, 'bash', NULL, 'pending', NULL), 'recorded', 'NULL time and target are accepted');

-- What bypasses record_step still meets the table's CHECKs.
SELECT throws_ok($$UPDATE public.jr_step_rewards SET execution_result = 'done' WHERE task_id = -900101$$,
    '23514', NULL, 'a direct write of an unknown result violates a CHECK');
SELECT throws_ok($$UPDATE public.jr_step_rewards SET step_number = -1 WHERE task_id = -900101$$,
    '23514', NULL, 'a direct write of a negative step number violates a CHECK');
SELECT throws_ok($$UPDATE public.jr_step_rewards SET execution_time_ms = -1 WHERE task_id = -900101$$,
    '23514', NULL, 'a direct write of a negative time violates a CHECK');

SELECT * FROM finish();
ROLLBACK;
