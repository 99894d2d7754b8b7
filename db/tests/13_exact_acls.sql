-- Every ledger object's whole ACL is exactly what db/privileges.sql grants: every grantee, PUBLIC
-- included, the owner's own entries aside, never a grant option, and no column privileges. So
-- nothing that default privileges gave another role, nor a GRANT made by hand, outlives make migrate.
BEGIN;
SET LOCAL client_min_messages = warning;
\ir load_pgtap.psql
SELECT plan(25);

-- The ledger's objects: its tables, the sequences they own, its views (db/views) and its functions
-- (db/functions, one per file, named after it), all in public.
CREATE TEMP TABLE ledger_objects (kind text, name text);
INSERT INTO ledger_objects VALUES
    ('table', 'jr_step_rewards'), ('table', 'jr_step_attempts'), ('table', 'jr_exploration_log'),
    ('table', 'jr_step_definition_successes'), ('table', 'jr_schema_migrations'), ('table', 'jr_schema_definitions'),
    ('sequence', 'jr_step_rewards_id_seq'), ('sequence', 'jr_step_attempts_id_seq'), ('sequence', 'jr_exploration_log_id_seq'),
    ('view', 'jr_step_type_stats'), ('view', 'jr_task_progress'), ('view', 'jr_retry_effectiveness'),
    ('view', 'jr_failure_hot_spots'),
    ('function', 'begin_step'), ('function', 'record_step'), ('function', 'step_succeeded'), ('function', 'set_step_reward'),
    ('function', 'record_exploration'), ('function', 'prune_step_attempts'), ('function', 'jr_step_content_hash'),
    ('function', 'jr_elide_middle'), ('function', 'jr_raise_row_violation');

-- Who may do what besides the owner; any object not named here is the owner's alone.
CREATE TEMP TABLE expected_acl (name text, grantee text, privilege text);
INSERT INTO expected_acl
SELECT name, 'jr_reader', 'SELECT' FROM ledger_objects
WHERE kind = 'view' OR name IN ('jr_step_rewards', 'jr_step_attempts', 'jr_exploration_log', 'jr_step_definition_successes');
INSERT INTO expected_acl VALUES
    ('begin_step', 'jr_executor', 'EXECUTE'), ('record_step', 'jr_executor', 'EXECUTE'),
    ('step_succeeded', 'jr_executor', 'EXECUTE'), ('set_step_reward', 'jr_rewarder', 'EXECUTE'),
    ('record_exploration', 'jr_rewarder', 'EXECUTE');

-- The objects as the catalog has them, with their ACLs (a NULL ACL is the default of its kind).
CREATE TEMP VIEW catalog_objects AS
SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' ELSE 'table' END AS kind, c.relname::text AS name,
       c.oid, c.relowner AS owner,
       coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner)) AS acl
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
  AND (c.relname IN (SELECT name FROM ledger_objects)
       OR c.oid IN (SELECT d.objid FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
                    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                      AND d.deptype IN ('a', 'i') AND t.relnamespace = 'public'::regnamespace
                      AND t.relname IN (SELECT name FROM ledger_objects WHERE kind = 'table')))
UNION ALL
SELECT 'function', p.proname::text, p.oid, p.proowner, coalesce(p.proacl, acldefault('f', p.proowner))
FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace AND p.proname IN (SELECT name FROM ledger_objects WHERE kind = 'function');

CREATE TEMP VIEW actual_acl AS
SELECT o.name, CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END AS grantee,
       a.privilege_type::text AS privilege, a.is_grantable
FROM catalog_objects o, aclexplode(o.acl) a
WHERE a.grantee <> o.owner;

-- 1. Every ledger object is there, once (no stray overload of a function), and the tables own
-- exactly the sequences listed.
SELECT bag_eq('SELECT kind, name FROM catalog_objects', 'SELECT kind, name FROM ledger_objects',
    'the ledger''s tables, the sequences they own, its views and its functions are each there once');

-- 2-23. Each object's whole ACL, every grantee (PUBLIC too): no more, no less, no grant option.
SELECT set_eq(
    format('SELECT grantee, privilege, is_grantable FROM actual_acl WHERE name = %L', name),
    format('SELECT grantee, privilege, false FROM expected_acl WHERE name = %L', name),
    format('%s %s: its ACL is exactly %s', kind, name,
           coalesce((SELECT string_agg(e.grantee || ' ' || e.privilege, ', ' ORDER BY e.grantee)
                     FROM expected_acl e WHERE e.name = l.name), 'the owner''s alone')))
FROM ledger_objects l
ORDER BY kind, name;

-- 24. No column privileges on any ledger table or view.
SELECT is_empty(
    $$SELECT o.name || '.' || att.attname || ': ' || a.privilege_type || ' to ' || pg_get_userbyid(a.grantee)
      FROM catalog_objects o JOIN pg_attribute att ON att.attrelid = o.oid AND att.attnum > 0,
           aclexplode(att.attacl) a
      WHERE o.kind <> 'function'$$,
    'no role holds a privilege on a column of a ledger table or view');

-- 25. The same, from the other side: nobody but the roles above appears in any ledger ACL.
SELECT is_empty(
    $$SELECT DISTINCT grantee FROM actual_acl WHERE grantee NOT IN ('jr_executor', 'jr_rewarder', 'jr_reader')$$,
    'no grantee but jr_executor, jr_rewarder and jr_reader (not PUBLIC, not a co-tenant) holds anything on a ledger object');

SELECT * FROM finish();
ROLLBACK;
