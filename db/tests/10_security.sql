-- Security: nobody gets more than their role. jr_executor and jr_rewarder touch no table directly,
-- jr_reader calls no write function, PUBLIC has nothing, and a caller's own search_path or pg_temp objects
-- cannot change what record_step writes.
BEGIN;
SET LOCAL client_min_messages = warning;
\ir load_pgtap.psql
SELECT plan(32);

CREATE TEMP TABLE project_relations (name text);
INSERT INTO project_relations VALUES ('jr_step_rewards'), ('jr_step_attempts'), ('jr_exploration_log'),
    ('jr_schema_migrations'), ('jr_schema_definitions'), ('jr_step_definition_successes'), ('jr_step_type_stats'), ('jr_task_progress'), ('jr_retry_effectiveness'),
    ('jr_failure_hot_spots');
CREATE TEMP TABLE write_functions (signature text);
INSERT INTO write_functions VALUES
    ('public.record_step(integer, integer, text, text, text, integer, text, timestamptz, uuid, text, text)'),
    ('public.begin_step(integer, integer, text, text, text, integer, timestamptz, uuid, text)'),
    ('public.set_step_reward(integer, integer, double precision, text, text)'),
    ('public.record_exploration(text, text, double precision, double precision, text)'),
    ('public.prune_step_attempts(interval, integer)');

-- 1-3 as the catalog states them.
SELECT is_empty(
    $$SELECT g.role || ': ' || r.name || ': ' || p.privilege FROM project_relations r,
             unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p(privilege),
             unnest(ARRAY['jr_executor', 'jr_rewarder']) g(role)
      WHERE has_table_privilege(g.role, 'public.' || r.name, p.privilege)$$,
    'jr_executor and jr_rewarder have no privilege on any project table or view');
SELECT is_empty(
    $$SELECT signature FROM write_functions WHERE has_function_privilege('jr_reader', signature, 'EXECUTE')$$,
    'jr_reader may execute no write function');
SELECT is_empty(
    $$SELECT c.relname FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
      WHERE c.oid IN (SELECT ('public.' || name)::regclass FROM project_relations) AND a.grantee = 0$$,
    'PUBLIC has no privilege on any project table or view');
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
      WHERE p.pronamespace = 'public'::regnamespace
        AND p.proname IN ('begin_step', 'record_step', 'step_succeeded', 'set_step_reward', 'record_exploration',
                          'prune_step_attempts', 'jr_step_content_hash', 'jr_elide_middle', 'jr_raise_row_violation')
        AND a.grantee = 0$$,
    'PUBLIC may execute no project function');
-- The owner's rights are what a SECURITY DEFINER function acts with: never a superuser's, whoever
-- ran make migrate (a superuser's run makes jr_owner the owner).
SELECT is_empty(
    $$SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
      WHERE c.oid IN (SELECT ('public.' || name)::regclass FROM project_relations) AND r.rolsuper$$,
    'no project table or view belongs to a superuser');
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
      WHERE p.pronamespace = 'public'::regnamespace
        AND p.proname IN ('begin_step', 'record_step', 'step_succeeded', 'set_step_reward', 'record_exploration',
                          'prune_step_attempts', 'jr_step_content_hash', 'jr_elide_middle', 'jr_raise_row_violation')
        AND (r.rolsuper OR p.prosecdef AND r.rolname <> (SELECT pg_get_userbyid(relowner) FROM pg_class
                                                         WHERE oid = 'public.jr_step_rewards'::regclass))$$,
    'no project function belongs to a superuser, and the SECURITY DEFINER ones belong to the tables'' owner');

-- The same, acted out, when the tester may become the roles.
SELECT pg_has_role('jr_executor', 'MEMBER') AND pg_has_role('jr_reader', 'MEMBER') AS may_become_roles \gset
\if :may_become_roles
SET LOCAL ROLE jr_executor;
SELECT throws_ok(format(statement, name, col), '42501', NULL,
                 'as jr_executor: ' || format(statement, name, col) || ' is denied')
FROM (VALUES ('jr_step_rewards', 'task_id'), ('jr_step_attempts', 'task_id'), ('jr_exploration_log', 'jr_type'),
             ('jr_schema_migrations', 'version')) t(name, col),
     (VALUES ('SELECT %2$I FROM public.%1$I'), ('INSERT INTO public.%1$I DEFAULT VALUES'),
             ('UPDATE public.%1$I SET %2$I = %2$I'), ('DELETE FROM public.%1$I')) s(statement)
ORDER BY name, statement;
RESET ROLE;
SET LOCAL ROLE jr_reader;
SELECT throws_ok(call, '42501', NULL, 'as jr_reader: ' || left(call, 40) || '… is denied')
FROM (VALUES ($$SELECT public.record_step(-901001, 1, 'bash', NULL, 'success', 1)$$),
             ($$SELECT public.set_step_reward(-901001, 1, 1)$$),
             ($$SELECT public.record_exploration('jr', 'task')$$),
             ($$SELECT public.prune_step_attempts('1 day')$$)) c(call);
RESET ROLE;
\else
SELECT skip('the tester may not SET ROLE jr_executor and jr_reader', 20);
\endif

-- 4. Shadows ahead on the caller's search_path (even ahead of pg_catalog) and in pg_temp.
CREATE SCHEMA jr_shadow;
CREATE TABLE jr_shadow.jr_step_rewards (LIKE public.jr_step_rewards);
CREATE TABLE jr_shadow.jr_step_attempts (LIKE public.jr_step_attempts);
CREATE TEMP TABLE jr_step_rewards (LIKE public.jr_step_rewards);
CREATE FUNCTION jr_shadow.sha256(bytea) RETURNS bytea LANGUAGE sql AS $$SELECT '\x00'::bytea$$;
CREATE FUNCTION jr_shadow.length(text) RETURNS integer LANGUAGE sql AS $$SELECT 0$$;
CREATE FUNCTION jr_shadow.btrim(text) RETURNS text LANGUAGE sql AS $$SELECT 'x'::text$$;
CREATE FUNCTION jr_shadow.format(text, integer, integer, text, text) RETURNS text LANGUAGE sql AS $$SELECT 'shadow'::text$$;
CREATE FUNCTION jr_shadow.format(text, integer) RETURNS text LANGUAGE sql AS $$SELECT 'shadow'::text$$;
CREATE FUNCTION jr_shadow.jr_step_content_hash(integer, integer, text, text) RETURNS text LANGUAGE sql AS $$SELECT 'shadow'::text$$;
CREATE FUNCTION jr_shadow.jr_elide_middle(text, integer) RETURNS text LANGUAGE sql AS $$SELECT 'shadow'::text$$;
CREATE FUNCTION jr_shadow.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS $$SELECT '2000-01-01'::timestamptz$$;
CREATE FUNCTION jr_shadow.gen_random_uuid() RETURNS uuid LANGUAGE sql AS $$SELECT '00000000-0000-4000-8000-000000000000'::uuid$$;
CREATE FUNCTION pg_temp.length(text) RETURNS integer LANGUAGE sql AS $$SELECT 0$$;
-- pgTAP's own schema, when the tests loaded it as a script, stays reachable at the end.
SELECT set_config('search_path', 'jr_shadow, pg_temp, pg_catalog, ' || current_setting('search_path'), true) AS search_path \gset

SELECT is(public.record_step(-901001, 1, 'bash', '/srv/app.py', 'failed', 5, repeat('e', 20000)), 'recorded',
    'record_step, called with shadows ahead on the search_path');
SELECT results_eq(
    $$SELECT step_content_hash::text, pg_catalog.length(error_detail) = 16384, last_event_at > '2001-01-01'
      FROM public.jr_step_rewards WHERE task_id = -901001$$,
    $$VALUES ('c3cc5e23f2abb44495339af90e2fa518ee586a82b2bc315c83ecc2b00924c3e6', true, true)$$,
    'the real table holds the real hash (Python''s), the real cut and the real time');
SELECT is((SELECT event_id <> '00000000-0000-4000-8000-000000000000' FROM public.jr_step_attempts WHERE task_id = -901001),
    true, 'the history got a real event id');
SELECT is((SELECT count(*)::int FROM jr_shadow.jr_step_rewards) + (SELECT count(*)::int FROM jr_shadow.jr_step_attempts)
          + (SELECT count(*)::int FROM pg_temp.jr_step_rewards), 0, 'the shadow tables got nothing');
SELECT throws_ok($$SELECT public.record_step(-901001, 2, repeat('s', 31), NULL, 'success', 1)$$, '22001', NULL,
    'a shadow length() does not let a 31-character step type through');
SELECT throws_ok($$SELECT public.record_step(-901001, 2, '  ', NULL, 'success', 1)$$, '22023', NULL,
    'a shadow btrim() does not let a blank step type through');

SELECT * FROM finish();
ROLLBACK;
