-- record_exploration: appends to jr_exploration_log and returns the id; its errors and who may call it.
BEGIN;
SET LOCAL client_min_messages = warning;
\ir load_pgtap.psql
SELECT plan(21);

SELECT has_function('public', 'record_exploration', ARRAY['text', 'text', 'double precision', 'double precision', 'text'],
    'record_exploration(jr_type, task_type, novelty_score, curiosity_bonus, task_outcome) exists');
SELECT function_returns('public', 'record_exploration', ARRAY['text', 'text', 'double precision', 'double precision', 'text'],
    'bigint', 'record_exploration returns bigint');
SELECT is((SELECT proargnames FROM pg_proc WHERE oid = 'public.record_exploration(text, text, double precision, double precision, text)'::regprocedure),
    ARRAY['jr_type', 'task_type', 'novelty_score', 'curiosity_bonus', 'task_outcome']::text[],
    'record_exploration''s parameter names and order');
SELECT is_definer('public', 'record_exploration', ARRAY['text', 'text', 'double precision', 'double precision', 'text'],
    'record_exploration is SECURITY DEFINER');
SELECT function_privs_are('public', 'record_exploration', ARRAY['text', 'text', 'double precision', 'double precision', 'text'],
    'public', ARRAY[]::text[], 'PUBLIC may not execute record_exploration');
SELECT function_privs_are('public', 'record_exploration', ARRAY['text', 'text', 'double precision', 'double precision', 'text'],
    'jr_rewarder', ARRAY['EXECUTE'], 'jr_rewarder may execute record_exploration');
SELECT function_privs_are('public', 'record_exploration', ARRAY['text', 'text', 'double precision', 'double precision', 'text'],
    'jr_reader', ARRAY[]::text[], 'jr_reader may not execute record_exploration');

SELECT public.record_exploration('pgtap-jr', 'refactor', 0.8, 0.25, 'success') AS first_id \gset
SELECT results_eq(
    format($$SELECT jr_type::text, task_type::text, novelty_score, curiosity_bonus, task_outcome::text,
                    created_at = now()::timestamp
             FROM public.jr_exploration_log WHERE id = %s$$, :first_id),
    $$VALUES ('pgtap-jr', 'refactor', 0.8::float8, 0.25::float8, 'success', true)$$,
    'the row it appended, found by the id it returned');
SELECT cmp_ok(public.record_exploration('pgtap-jr', 'refactor'), '>', :first_id::bigint,
    'only the types are required, and ids grow');
SELECT is(public.record_exploration(repeat('j', 50), repeat('t', 100), -3, 0, 'abandoned') IS NOT NULL, true,
    'types at their column''s length are accepted');
SELECT lives_ok($$SELECT public.record_exploration('pgtap-jr', 'x', NULL, NULL, 'partial'),
                         public.record_exploration('pgtap-jr', 'x', NULL, NULL, 'failed')$$,
    'the rest of the outcome vocabulary');

SELECT throws_ok($$SELECT public.record_exploration(NULL, 'refactor')$$,
    '22004', 'record_exploration: jr_type must not be NULL', 'NULL jr_type: 22004');
SELECT throws_ok($$SELECT public.record_exploration('pgtap-jr', NULL)$$,
    '22004', 'record_exploration: task_type must not be NULL', 'NULL task_type: 22004');
SELECT throws_ok($$SELECT public.record_exploration(' ', 'refactor')$$,
    '22023', 'record_exploration: jr_type must not be empty', 'blank jr_type: 22023');
SELECT throws_ok($$SELECT public.record_exploration(repeat('j', 51), 'refactor')$$,
    '22001', NULL, 'a jr_type one character too long: 22001');
SELECT throws_ok($$SELECT public.record_exploration('pgtap-jr', repeat('t', 101))$$,
    '22001', NULL, 'a task_type one character too long: 22001');
SELECT throws_ok($$SELECT public.record_exploration('pgtap-jr', 'refactor', 'NaN')$$,
    '22003', 'record_exploration: novelty_score and curiosity_bonus must be finite numbers, got NaN and <NULL>',
    'a NaN novelty score: 22003');
SELECT throws_ok($$SELECT public.record_exploration('pgtap-jr', 'refactor', 1, '-Infinity')$$,
    '22003', NULL, 'an infinite curiosity bonus: 22003');
SELECT throws_ok($$SELECT public.record_exploration('pgtap-jr', 'refactor', 1, 1, 'done')$$,
    '22023', 'record_exploration: task_outcome must be success, failed, partial or abandoned, got ''done''',
    'an unknown outcome: 22023');
SELECT is((SELECT count(*)::int FROM public.jr_exploration_log WHERE jr_type = 'pgtap-jr'), 4,
    'rejected calls appended nothing');
SELECT throws_ok($$UPDATE public.jr_exploration_log SET task_outcome = 'done' WHERE jr_type = 'pgtap-jr'$$,
    '23514', NULL, 'a direct unknown outcome violates a CHECK');

SELECT * FROM finish();
ROLLBACK;
