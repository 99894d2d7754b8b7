-- Structure of the SQL API and who may use it: signatures, SECURITY DEFINER with a pinned
-- search_path, and least privilege for PUBLIC, jr_executor, jr_rewarder and jr_reader.
BEGIN;
SET LOCAL client_min_messages = warning;
\ir load_pgtap.psql
SELECT plan(65);

SELECT has_function('public', 'record_step',
    ARRAY['integer', 'integer', 'text', 'text', 'text', 'integer', 'text', 'timestamp with time zone', 'uuid', 'text', 'text'],
    'record_step has the contract''s eleven parameters');
SELECT has_function('public', 'step_succeeded', ARRAY['integer', 'integer', 'text'],
    'step_succeeded(integer, integer, text) exists');
SELECT function_returns('public', 'record_step',
    ARRAY['integer', 'integer', 'text', 'text', 'text', 'integer', 'text', 'timestamp with time zone', 'uuid', 'text', 'text'],
    'text', 'record_step returns text (recorded, stale or duplicate)');
SELECT function_returns('public', 'step_succeeded', ARRAY['integer', 'integer', 'text'], 'boolean',
    'step_succeeded returns boolean');

SELECT is(
    (SELECT proargnames FROM pg_proc WHERE oid = 'public.record_step(integer, integer, text, text, text, integer, text, timestamptz, uuid, text, text)'::regprocedure),
    ARRAY['task_id', 'step_number', 'step_type', 'target_file', 'execution_result', 'execution_time_ms',
          'error_detail', 'recorded_at', 'event_id', 'executor', 'step_definition_hash']::text[],
    'record_step''s parameter names and order are the contract');
SELECT is(
    (SELECT pronargdefaults::int FROM pg_proc WHERE oid = 'public.record_step(integer, integer, text, text, text, integer, text, timestamptz, uuid, text, text)'::regprocedure),
    5, 'record_step: error_detail, recorded_at, event_id, executor and step_definition_hash default to NULL');
SELECT is(
    (SELECT proargnames FROM pg_proc WHERE oid = 'public.begin_step(integer, integer, text, text, text, integer, timestamptz, uuid, text)'::regprocedure),
    ARRAY['task_id', 'step_number', 'step_type', 'target_file', 'step_definition_hash', 'occurrence', 'recorded_at',
          'event_id', 'executor']::text[],
    'begin_step''s parameter names and order are the contract');
SELECT function_returns('public', 'begin_step',
    ARRAY['integer', 'integer', 'text', 'text', 'text', 'integer', 'timestamp with time zone', 'uuid', 'text'],
    'text', 'begin_step returns text (run or skip)');
SELECT is_definer('public', 'begin_step',
    ARRAY['integer', 'integer', 'text', 'text', 'text', 'integer', 'timestamp with time zone', 'uuid', 'text'],
    'begin_step is SECURITY DEFINER');
SELECT is(
    (SELECT proargnames FROM pg_proc WHERE oid = 'public.step_succeeded(integer, integer, text)'::regprocedure),
    ARRAY['task_id', 'step_number', 'step_content_hash']::text[],
    'step_succeeded''s parameter names and order are the contract');
SELECT is(
    (SELECT pronargdefaults::int FROM pg_proc WHERE oid = 'public.step_succeeded(integer, integer, text)'::regprocedure),
    1, 'step_succeeded: step_content_hash defaults to NULL');

SELECT is_definer('public', 'record_step',
    ARRAY['integer', 'integer', 'text', 'text', 'text', 'integer', 'text', 'timestamp with time zone', 'uuid', 'text', 'text'],
    'record_step is SECURITY DEFINER');
SELECT is_definer('public', 'step_succeeded', ARRAY['integer', 'integer', 'text'], 'step_succeeded is SECURITY DEFINER');
SELECT volatility_is('public', 'step_succeeded', ARRAY['integer', 'integer', 'text'], 'stable', 'step_succeeded is STABLE');
SELECT volatility_is('public', 'record_step',
    ARRAY['integer', 'integer', 'text', 'text', 'text', 'integer', 'text', 'timestamp with time zone', 'uuid', 'text', 'text'],
    'volatile', 'record_step is VOLATILE');
SELECT volatility_is('public', 'jr_step_content_hash', ARRAY['integer', 'integer', 'text', 'text'], 'immutable',
    'jr_step_content_hash is IMMUTABLE');

SELECT is_empty(
    $$SELECT oid::regprocedure::text FROM pg_proc
      WHERE pronamespace = 'public'::regnamespace
        AND proname IN ('begin_step', 'record_step', 'step_succeeded', 'set_step_reward', 'record_exploration', 'prune_step_attempts',
                        'jr_step_content_hash', 'jr_elide_middle', 'jr_raise_row_violation')
        AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (proconfig), false)$$,
    'every project function pins search_path to pg_catalog, then pg_temp last');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'public.step_succeeded(integer, integer, text)'::regprocedure),
    ARRAY['search_path=pg_catalog, pg_temp', 'plan_cache_mode=force_custom_plan'],
    'step_succeeded is planned for each call: no plan cached on an empty table keeps it off its key');

-- PUBLIC has nothing.
SELECT function_privs_are('public', 'record_step',
    ARRAY['integer', 'integer', 'text', 'text', 'text', 'integer', 'text', 'timestamp with time zone', 'uuid', 'text', 'text'],
    'public', ARRAY[]::text[], 'PUBLIC may not execute record_step');
SELECT function_privs_are('public', 'step_succeeded', ARRAY['integer', 'integer', 'text'], 'public', ARRAY[]::text[],
    'PUBLIC may not execute step_succeeded');
SELECT function_privs_are('public', 'begin_step',
    ARRAY['integer', 'integer', 'text', 'text', 'text', 'integer', 'timestamp with time zone', 'uuid', 'text'],
    'public', ARRAY[]::text[], 'PUBLIC may not execute begin_step');
SELECT table_privs_are('public', 'jr_step_definition_successes', 'public', ARRAY[]::text[],
    'PUBLIC has no privilege on jr_step_definition_successes');
SELECT function_privs_are('public', 'jr_step_content_hash', ARRAY['integer', 'integer', 'text', 'text'],
    'public', ARRAY[]::text[], 'PUBLIC may not execute jr_step_content_hash');
SELECT function_privs_are('public', 'jr_elide_middle', ARRAY['text', 'integer'], 'public', ARRAY[]::text[],
    'PUBLIC may not execute jr_elide_middle');
SELECT table_privs_are('public', 'jr_step_rewards', 'public', ARRAY[]::text[], 'PUBLIC has no privilege on jr_step_rewards');
SELECT table_privs_are('public', 'jr_step_attempts', 'public', ARRAY[]::text[], 'PUBLIC has no privilege on jr_step_attempts');
SELECT table_privs_are('public', 'jr_exploration_log', 'public', ARRAY[]::text[], 'PUBLIC has no privilege on jr_exploration_log');

-- jr_executor: the write and check functions, no tables.
SELECT has_role('jr_executor', 'role jr_executor exists');
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = 'jr_executor'), false, 'jr_executor is NOLOGIN');
SELECT function_privs_are('public', 'record_step',
    ARRAY['integer', 'integer', 'text', 'text', 'text', 'integer', 'text', 'timestamp with time zone', 'uuid', 'text', 'text'],
    'jr_executor', ARRAY['EXECUTE'], 'jr_executor may execute record_step');
SELECT function_privs_are('public', 'step_succeeded', ARRAY['integer', 'integer', 'text'], 'jr_executor', ARRAY['EXECUTE'],
    'jr_executor may execute step_succeeded');
SELECT function_privs_are('public', 'begin_step',
    ARRAY['integer', 'integer', 'text', 'text', 'text', 'integer', 'timestamp with time zone', 'uuid', 'text'],
    'jr_executor', ARRAY['EXECUTE'], 'jr_executor may execute begin_step');
SELECT table_privs_are('public', 'jr_step_definition_successes', 'jr_executor', ARRAY[]::text[],
    'jr_executor has no privilege on jr_step_definition_successes');
SELECT table_privs_are('public', 'jr_step_rewards', 'jr_executor', ARRAY[]::text[], 'jr_executor has no privilege on jr_step_rewards');
SELECT table_privs_are('public', 'jr_step_attempts', 'jr_executor', ARRAY[]::text[], 'jr_executor has no privilege on jr_step_attempts');

-- jr_executor grades nothing: the reward work's writers belong to jr_rewarder, so the agent being
-- graded cannot grade itself.
SELECT function_privs_are('public', 'set_step_reward', ARRAY['integer', 'integer', 'double precision', 'text', 'text'],
    'jr_executor', ARRAY[]::text[], 'jr_executor may not execute set_step_reward');
SELECT function_privs_are('public', 'record_exploration', ARRAY['text', 'text', 'double precision', 'double precision', 'text'],
    'jr_executor', ARRAY[]::text[], 'jr_executor may not execute record_exploration');

-- jr_rewarder: the reward work's writers, nothing else.
SELECT has_role('jr_rewarder', 'role jr_rewarder exists');
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = 'jr_rewarder'), false, 'jr_rewarder is NOLOGIN');
SELECT function_privs_are('public', 'set_step_reward', ARRAY['integer', 'integer', 'double precision', 'text', 'text'],
    'jr_rewarder', ARRAY['EXECUTE'], 'jr_rewarder may execute set_step_reward');
SELECT function_privs_are('public', 'record_exploration', ARRAY['text', 'text', 'double precision', 'double precision', 'text'],
    'jr_rewarder', ARRAY['EXECUTE'], 'jr_rewarder may execute record_exploration');
SELECT function_privs_are('public', 'record_step',
    ARRAY['integer', 'integer', 'text', 'text', 'text', 'integer', 'text', 'timestamp with time zone', 'uuid', 'text', 'text'],
    'jr_rewarder', ARRAY[]::text[], 'jr_rewarder may not execute record_step');
SELECT table_privs_are('public', 'jr_step_rewards', 'jr_rewarder', ARRAY[]::text[], 'jr_rewarder has no privilege on jr_step_rewards');

-- jr_reader: SELECT on the tables, nothing else.
SELECT has_role('jr_reader', 'role jr_reader exists');
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = 'jr_reader'), false, 'jr_reader is NOLOGIN');
SELECT table_privs_are('public', 'jr_step_rewards', 'jr_reader', ARRAY['SELECT'], 'jr_reader may only SELECT jr_step_rewards');
SELECT table_privs_are('public', 'jr_step_attempts', 'jr_reader', ARRAY['SELECT'], 'jr_reader may only SELECT jr_step_attempts');
SELECT table_privs_are('public', 'jr_exploration_log', 'jr_reader', ARRAY['SELECT'], 'jr_reader may only SELECT jr_exploration_log');
SELECT table_privs_are('public', 'jr_step_definition_successes', 'jr_reader', ARRAY['SELECT'],
    'jr_reader may only SELECT jr_step_definition_successes');
SELECT function_privs_are('public', 'record_step',
    ARRAY['integer', 'integer', 'text', 'text', 'text', 'integer', 'text', 'timestamp with time zone', 'uuid', 'text', 'text'],
    'jr_reader', ARRAY[]::text[], 'jr_reader may not execute record_step');

-- The same, acted out. SET ROLE needs membership: a tester who lacks it skips these.
SELECT pg_has_role('jr_executor', 'MEMBER') AND pg_has_role('jr_rewarder', 'MEMBER') AND pg_has_role('jr_reader', 'MEMBER')
    AS may_become_roles \gset
\if :may_become_roles
SET LOCAL ROLE jr_executor;
SELECT throws_ok('SELECT count(*) FROM public.jr_step_rewards', '42501', NULL,
    'as jr_executor, reading jr_step_rewards directly is denied');
SELECT throws_ok($$INSERT INTO public.jr_step_rewards (task_id, step_number, step_type) VALUES (-900201, 1, 'bash')$$,
    '42501', NULL, 'as jr_executor, writing jr_step_rewards directly is denied');
SELECT throws_ok('DELETE FROM public.jr_step_attempts', '42501', NULL,
    'as jr_executor, deleting history directly is denied');
SELECT is(public.record_step(-900201, 1, 'bash', NULL, 'success', 5), 'recorded',
    'as jr_executor, record_step works');
SELECT is(public.step_succeeded(-900201, 1), true, 'as jr_executor, step_succeeded works');
-- The attack: the agent being graded rewards its own step.
SELECT throws_ok('SELECT public.set_step_reward(-900201, 1, 1.0, ''correct'')', '42501', NULL,
    'as jr_executor, grading its own step with set_step_reward is denied');
SELECT throws_ok($$SELECT public.record_exploration('jr', 'task', task_outcome => 'success')$$, '42501', NULL,
    'as jr_executor, record_exploration is denied');
RESET ROLE;
SET LOCAL ROLE jr_rewarder;
SELECT lives_ok('SELECT public.set_step_reward(-900201, 1, 0.5, ''correct'')', 'as jr_rewarder, set_step_reward works');
-- Refused by its own check, after the privilege check: jr_rewarder may call it, and no id is used.
SELECT throws_ok($$SELECT public.record_exploration('jr', 'task', task_outcome => 'won')$$, '22023', NULL,
    'as jr_rewarder, record_exploration runs (its vocabulary check answers, not a privilege error)');
SELECT throws_ok('SELECT public.record_step(-900201, 2, ''bash'', NULL, ''success'', 5)', '42501', NULL,
    'as jr_rewarder, record_step is denied');
SELECT throws_ok('SELECT count(*) FROM public.jr_step_rewards', '42501', NULL,
    'as jr_rewarder, reading jr_step_rewards directly is denied');
RESET ROLE;
SELECT is((SELECT implicit_reward FROM public.jr_step_rewards WHERE task_id = -900201 AND step_number = 1), 0.5::float8,
    'the reward is jr_rewarder''s');
SET LOCAL ROLE jr_reader;
SELECT throws_ok($$SELECT public.record_step(-900201, 2, 'bash', NULL, 'success', 5)$$, '42501', NULL,
    'as jr_reader, record_step is denied');
SELECT throws_ok($$UPDATE public.jr_step_rewards SET execution_result = 'failed'$$, '42501', NULL,
    'as jr_reader, updating jr_step_rewards is denied');
SELECT is((SELECT count(*)::int FROM public.jr_step_rewards WHERE task_id = -900201), 1,
    'as jr_reader, SELECT on jr_step_rewards works');
RESET ROLE;
\else
SELECT skip('the tester may not SET ROLE jr_executor, jr_rewarder and jr_reader', 15);
\endif

SELECT * FROM finish();
ROLLBACK;
