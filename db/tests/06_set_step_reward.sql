-- set_step_reward: the reward work's write into a step's row; its vocabularies, errors and who may call it.
BEGIN;
SET LOCAL client_min_messages = warning;
\ir load_pgtap.psql
SELECT plan(30);

SELECT has_function('public', 'set_step_reward', ARRAY['integer', 'integer', 'double precision', 'text', 'text'],
    'set_step_reward(task_id, step_number, implicit_reward, verified_outcome, retry_decision) exists');
SELECT is((SELECT proargnames FROM pg_proc WHERE oid = 'public.set_step_reward(integer, integer, double precision, text, text)'::regprocedure),
    ARRAY['task_id', 'step_number', 'implicit_reward', 'verified_outcome', 'retry_decision']::text[],
    'set_step_reward''s parameter names and order');
SELECT is_definer('public', 'set_step_reward', ARRAY['integer', 'integer', 'double precision', 'text', 'text'],
    'set_step_reward is SECURITY DEFINER');
SELECT function_privs_are('public', 'set_step_reward', ARRAY['integer', 'integer', 'double precision', 'text', 'text'],
    'public', ARRAY[]::text[], 'PUBLIC may not execute set_step_reward');
SELECT function_privs_are('public', 'set_step_reward', ARRAY['integer', 'integer', 'double precision', 'text', 'text'],
    'jr_rewarder', ARRAY['EXECUTE'], 'jr_rewarder may execute set_step_reward');
SELECT function_privs_are('public', 'set_step_reward', ARRAY['integer', 'integer', 'double precision', 'text', 'text'],
    'jr_reader', ARRAY[]::text[], 'jr_reader may not execute set_step_reward');

SELECT is(public.record_step(-900401, 1, 'bash', NULL, 'success', 5), 'recorded', 'setup: a step');
UPDATE public.jr_step_rewards SET updated_at = '2000-01-01' WHERE task_id = -900401;

SELECT lives_ok($$SELECT public.set_step_reward(-900401, 1, 0.75, 'correct', 'skip')$$, 'all three fields are set');
SELECT results_eq(
    $$SELECT implicit_reward, verified_outcome::text, retry_decision::text, updated_at = now()::timestamp
      FROM public.jr_step_rewards WHERE task_id = -900401 AND step_number = 1$$,
    $$VALUES (0.75::float8, 'correct', 'skip', true)$$,
    'the row holds them and updated_at moved');

SELECT lives_ok($$SELECT public.set_step_reward(-900401, 1, -1.5)$$, 'only the reward');
SELECT results_eq(
    $$SELECT implicit_reward, verified_outcome::text, retry_decision::text
      FROM public.jr_step_rewards WHERE task_id = -900401 AND step_number = 1$$,
    $$VALUES (-1.5::float8, 'correct', 'skip')$$,
    'NULL arguments leave their fields unchanged');
SELECT lives_ok($$SELECT public.set_step_reward(-900401, 1, NULL, 'incorrect')$$, 'only the verified outcome');
SELECT lives_ok($$SELECT public.set_step_reward(-900401, 1, NULL, NULL, 'escalate')$$, 'only the retry decision');
SELECT results_eq(
    $$SELECT implicit_reward, verified_outcome::text, retry_decision::text, execution_result::text, attempts
      FROM public.jr_step_rewards WHERE task_id = -900401 AND step_number = 1$$,
    $$VALUES (-1.5::float8, 'incorrect', 'escalate', 'success', 1)$$,
    'each NULL left the others alone, and the step''s result and attempts are untouched');
SELECT is(public.record_step(-900401, 1, 'bash', NULL, 'failed', 5), 'recorded', 'a later run of the step');
SELECT is((SELECT implicit_reward FROM public.jr_step_rewards WHERE task_id = -900401 AND step_number = 1), -1.5::float8,
    'record_step keeps the reward fields');

SELECT lives_ok($$SELECT public.set_step_reward(-900401, 1, 1e308, 'partial', 'retry')$$, 'a huge finite reward');
SELECT lives_ok($$SELECT public.set_step_reward(-900401, 1, NULL, 'inconclusive', 'revert')$$, 'the rest of the vocabulary');
SELECT lives_ok($$SELECT public.set_step_reward(-900401, 1, NULL, NULL, 'abandon')$$, 'abandon');

SELECT throws_ok($$SELECT public.set_step_reward(-900401, 2, 1)$$,
    'P0002', 'set_step_reward: task -900401 step 2 is not in the ledger', 'an unknown step: P0002');
SELECT throws_ok($$SELECT public.set_step_reward(-900401, 1, 'NaN')$$,
    '22003', 'set_step_reward: implicit_reward must be a finite number, got NaN', 'NaN: 22003');
SELECT throws_ok($$SELECT public.set_step_reward(-900401, 1, 'Infinity')$$,
    '22003', 'set_step_reward: implicit_reward must be a finite number, got Infinity', 'Infinity: 22003');
SELECT throws_ok($$SELECT public.set_step_reward(-900401, 1, '-Infinity')$$,
    '22003', 'set_step_reward: implicit_reward must be a finite number, got -Infinity', '-Infinity: 22003');
SELECT throws_ok($$SELECT public.set_step_reward(-900401, 1, NULL, 'right')$$,
    '22023', 'set_step_reward: verified_outcome must be correct, incorrect, partial or inconclusive, got ''right''',
    'a verified_outcome outside the vocabulary: 22023');
SELECT throws_ok($$SELECT public.set_step_reward(-900401, 1, NULL, NULL, 'again')$$,
    '22023', 'set_step_reward: retry_decision must be skip, retry, revert, abandon or escalate, got ''again''',
    'a retry_decision outside the vocabulary: 22023');
SELECT throws_ok($$SELECT public.set_step_reward(NULL, 1, 1)$$,
    '22004', 'set_step_reward: task_id must not be NULL', 'NULL task_id: 22004');
SELECT throws_ok($$SELECT public.set_step_reward(-900401, NULL, 1)$$,
    '22004', 'set_step_reward: step_number must not be NULL', 'NULL step_number: 22004');
SELECT throws_ok($$SELECT public.set_step_reward(-900401, 1, NULL)$$,
    '22004', 'set_step_reward: nothing to set; give implicit_reward, verified_outcome or retry_decision',
    'nothing to set: 22004');

-- The CHECKs hold the same line for writes that bypass the function.
SELECT throws_ok($$UPDATE public.jr_step_rewards SET implicit_reward = 'NaN' WHERE task_id = -900401$$,
    '23514', NULL, 'a direct NaN reward violates a CHECK');
SELECT throws_ok($$UPDATE public.jr_step_rewards SET retry_decision = 'again' WHERE task_id = -900401$$,
    '23514', NULL, 'a direct unknown retry_decision violates a CHECK');

SELECT * FROM finish();
ROLLBACK;
