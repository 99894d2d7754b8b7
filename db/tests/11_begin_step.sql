-- begin_step: the retry check by definition, and the pending marker in the same call. A step whose
-- definition already succeeded in the task is skipped wherever it now stands; a changed definition
-- runs at the same number; the k-th occurrence of a definition matches its k-th success; callers
-- that pass no definition keep the seed's check by position.
BEGIN;
SET LOCAL client_min_messages = warning;
\ir load_pgtap.psql
SELECT plan(24);

CREATE TEMP TABLE d (name text PRIMARY KEY, hash text);
INSERT INTO d SELECT n, encode(sha256(convert_to(n, 'UTF8')), 'hex') FROM unnest(ARRAY['edit', 'edit v2', 'tests']) n;
CREATE FUNCTION pg_temp.h(name text) RETURNS text LANGUAGE sql AS $$SELECT hash FROM d WHERE d.name = h.name$$;

-- Attempt 1: the edit runs at number 0 and succeeds.
SELECT is(public.begin_step(-911001, 0, 'search_replace', 'app.py', pg_temp.h('edit')), 'run',
    'a definition never seen in the task runs');
SELECT results_eq(
    $$SELECT execution_result::text, step_definition_hash::text FROM public.jr_step_rewards WHERE task_id = -911001$$,
    $$SELECT 'pending', pg_temp.h('edit')$$,
    'begin_step recorded the pending marker, with the definition');
SELECT is(current_setting('synchronous_commit'), 'off', 'the pending marker does not wait for its WAL flush');
SELECT is(public.record_step(-911001, 0, 'search_replace', 'app.py', 'success', 12,
    step_definition_hash => pg_temp.h('edit')), 'recorded', 'its success is recorded');
SELECT results_eq(
    $$SELECT successes FROM public.jr_step_definition_successes WHERE task_id = -911001$$, $$VALUES (1)$$,
    'the definition has one success');

-- Attempt 2, re-planned: a new step is inserted in front, so the edit is now number 1.
SELECT is(public.begin_step(-911001, 0, 'bash', NULL, pg_temp.h('tests')), 'run',
    'the inserted step, a new definition at the edit''s old number, runs');
SELECT is(public.begin_step(-911001, 1, 'search_replace', 'app.py', pg_temp.h('edit')), 'skip',
    'the finished edit is skipped at its new number');
SELECT is((SELECT count(*)::int FROM public.jr_step_rewards WHERE task_id = -911001 AND step_number = 1), 0,
    'a skipped step writes nothing');
SELECT is(public.begin_step(-911001, 0, 'search_replace', 'app.py', pg_temp.h('edit v2')), 'run',
    'a reworded edit runs, even at a number whose row succeeded before');

-- The same definition twice in one plan: run the tests, edit, run the tests again.
SELECT is(public.begin_step(-911002, 0, 'bash', NULL, pg_temp.h('tests'), 1), 'run', 'tests, first occurrence: run');
SELECT is(public.record_step(-911002, 0, 'bash', NULL, 'success', 5, step_definition_hash => pg_temp.h('tests')),
    'recorded', 'and succeed');
SELECT is(public.begin_step(-911002, 2, 'bash', NULL, pg_temp.h('tests'), 2), 'run',
    'the second occurrence runs: one success counts for one occurrence');
SELECT is(public.record_step(-911002, 2, 'bash', NULL, 'failed', 5, 'exit 1',
    step_definition_hash => pg_temp.h('tests')), 'recorded', 'and fails');
SELECT is(public.begin_step(-911002, 0, 'bash', NULL, pg_temp.h('tests'), 1), 'skip',
    'on the retry, the first occurrence is skipped');
SELECT is(public.begin_step(-911002, 2, 'bash', NULL, pg_temp.h('tests'), 2), 'run',
    'and the second, which failed, runs again');

-- Successes counted once per event, stale ones too.
SELECT is(public.record_step(-911003, 0, 'bash', NULL, 'success', 1, NULL, now(), 'a0000000-0000-4000-8000-000000000001',
    step_definition_hash => pg_temp.h('tests')), 'recorded', 'a success');
SELECT is(public.record_step(-911003, 0, 'bash', NULL, 'success', 1, NULL, now(), 'a0000000-0000-4000-8000-000000000001',
    step_definition_hash => pg_temp.h('tests')), 'duplicate', 'replayed');
SELECT is(public.record_step(-911003, 0, 'bash', NULL, 'success', 1, NULL, now() - interval '1 hour', NULL, NULL,
    pg_temp.h('tests')), 'stale', 'and an older success arriving late');
SELECT results_eq(
    $$SELECT successes FROM public.jr_step_definition_successes WHERE task_id = -911003$$, $$VALUES (2)$$,
    'the replay counts once, the late success counts');

-- Callers that pass no definition: the seed's check by position.
SELECT is(public.record_step(-911004, 3, 'bash', NULL, 'success', 1), 'recorded', 'a step recorded without a definition');
SELECT is(public.begin_step(-911004, 3, 'bash', NULL), 'skip', 'without a definition, its number decides: skip');
SELECT is(public.begin_step(-911004, 4, 'bash', NULL), 'run', 'and another number runs');

SELECT throws_ok($$SELECT public.begin_step(-911005, 0, 'bash', NULL, NULL, 0)$$, '22023',
    'begin_step: occurrence must be 1 or more, got 0', 'occurrence 0 is refused, naming the value');
SELECT throws_ok($$SELECT public.begin_step(-911005, 0, 'bash', NULL, 'ABC', 1)$$, '22023',
    'record_step: step_definition_hash must be 64 lowercase hex digits (a SHA-256), got ''ABC''',
    'a definition hash that is not a SHA-256 is refused, naming the value');

SELECT * FROM finish();
ROLLBACK;
