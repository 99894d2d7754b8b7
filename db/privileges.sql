-- Who may do what; re-applied by every `make migrate`, after the functions and views, in their
-- transaction. Two parts: the roles, then every ledger object's privileges, made exact.

-- 1. The roles, all NOLOGIN; a DBA grants them to logins.
--   jr_executor  the executor: records and checks its steps.
--   jr_rewarder  the reward work: grades steps and logs exploration. A role of its own, so the agent
--                being graded (a member of jr_executor) cannot grade itself.
--   jr_reader    reads the tables and views.
-- Each is created when the migrating login may create roles; otherwise a NOTICE says what a DBA must
-- run, and part 2 grants its privileges on the next migrate once it exists.
DO $$
DECLARE
    role_name text;
    can_create boolean;
BEGIN
    SELECT r.rolsuper OR r.rolcreaterole INTO can_create
    FROM pg_catalog.pg_roles r
    WHERE r.rolname = current_user;

    FOREACH role_name IN ARRAY ARRAY['jr_executor', 'jr_rewarder', 'jr_reader'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
            IF can_create THEN
                EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', role_name);
                RAISE NOTICE 'created role %', role_name;
            ELSE
                RAISE NOTICE 'role % does not exist and % may not create roles; a DBA must run: CREATE ROLE % NOLOGIN; then run make migrate again to grant its privileges',
                    role_name, current_user, role_name;
            END IF;
        END IF;
    END LOOP;
END
$$;

-- 2. Every ledger object's privileges, exactly: the list below is the whole truth about who may do
-- what, besides the owner. Whatever else an object's ACL holds is revoked (CASCADE, so grants made
-- by a holder of a grant option go too): PUBLIC's default EXECUTE on a function, what ALTER DEFAULT
-- PRIVILEGES gave another role when the object was created, what someone granted by hand since,
-- column privileges included. What the list grants and the ACL lacks is granted. A NOTICE names
-- each change. When the ACLs are already exact, nothing is executed at all: the compare reads the
-- catalogs only, so a migrate with nothing to do takes no lock and writes no catalog row here.
-- Runs as the objects' owner, a member of it or a superuser (whose GRANT and REVOKE act as the
-- owner); a grant to a role that does not exist yet waits for the migrate after a DBA created it.
DO $$
DECLARE
    change record;
    changed boolean;
BEGIN
    FOR pass IN 1..3 LOOP
        changed := false;
        FOR change IN
            -- The ledger's objects and what each role may do with them; (grantee, privilege) NULL:
            -- the owner's alone. The sequences the tables own are the owner's alone too: only the
            -- SECURITY DEFINER functions, which act as the owner, insert rows.
            WITH ledger(kind, name, grantee, privilege) AS (VALUES
                ('table',    'jr_step_rewards',              'jr_reader',   'SELECT'),
                ('table',    'jr_step_attempts',             'jr_reader',   'SELECT'),
                ('table',    'jr_exploration_log',           'jr_reader',   'SELECT'),
                ('table',    'jr_step_definition_successes', 'jr_reader',   'SELECT'),
                ('table',    'jr_schema_migrations',         NULL,          NULL),
                ('table',    'jr_schema_definitions',        NULL,          NULL),
                ('view',     'jr_step_type_stats',           'jr_reader',   'SELECT'),
                ('view',     'jr_task_progress',             'jr_reader',   'SELECT'),
                ('view',     'jr_retry_effectiveness',       'jr_reader',   'SELECT'),
                ('view',     'jr_failure_hot_spots',         'jr_reader',   'SELECT'),
                ('function', 'begin_step',                   'jr_executor', 'EXECUTE'),
                ('function', 'record_step',                  'jr_executor', 'EXECUTE'),
                ('function', 'step_succeeded',               'jr_executor', 'EXECUTE'),
                ('function', 'set_step_reward',              'jr_rewarder', 'EXECUTE'),
                ('function', 'record_exploration',           'jr_rewarder', 'EXECUTE'),
                ('function', 'prune_step_attempts',          NULL,          NULL),  -- a DBA tool
                ('function', 'jr_step_content_hash',         NULL,          NULL),  -- internal helpers
                ('function', 'jr_elide_middle',              NULL,          NULL),
                ('function', 'jr_raise_row_violation',       NULL,          NULL)
            ),
            relations AS (
                SELECT l.kind, c.oid, c.relname AS name, c.relowner AS owner,
                       coalesce(c.relacl, pg_catalog.acldefault('r', c.relowner)) AS acl
                FROM (SELECT DISTINCT kind, name FROM ledger WHERE kind IN ('table', 'view')) l
                JOIN pg_catalog.pg_class c ON c.relnamespace = 'public'::regnamespace AND c.relname = l.name
                    AND c.relkind = ANY (CASE l.kind WHEN 'table' THEN '{r,p}'::"char"[] ELSE '{v,m}'::"char"[] END)
            ),
            -- Each object as GRANT names it, with its ACL (a NULL ACL is its kind's default: for a
            -- function, EXECUTE to PUBLIC).
            objects AS (
                SELECT r.kind, r.oid, r.name, 'TABLE' AS keyword, pg_catalog.format('public.%I', r.name) AS sql_name,
                       r.owner, r.acl
                FROM relations r
                UNION ALL
                SELECT 'sequence', s.oid, s.relname, 'SEQUENCE', pg_catalog.format('public.%I', s.relname),
                       s.relowner, coalesce(s.relacl, pg_catalog.acldefault('s', s.relowner))
                FROM relations r
                JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = r.oid
                    AND d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')
                JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
                UNION ALL
                SELECT 'function', p.oid, p.proname, 'FUNCTION', p.oid::regprocedure::text, p.proowner,
                       coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))
                FROM (SELECT DISTINCT name FROM ledger WHERE kind = 'function') l
                JOIN pg_catalog.pg_proc p ON p.pronamespace = 'public'::regnamespace AND p.proname = l.name
            ),
            -- What the ACLs grant to anyone but the owner (grantee 0 is PUBLIC): on the object
            -- (column NULL) and on each of a relation's columns.
            granted AS (
                SELECT o.oid, NULL::name AS column_name, a.grantee, a.privilege_type, a.is_grantable
                FROM objects o, pg_catalog.aclexplode(o.acl) a
                WHERE a.grantee <> o.owner
                UNION
                SELECT o.oid, att.attname, a.grantee, a.privilege_type, a.is_grantable
                FROM objects o
                JOIN pg_catalog.pg_attribute att ON att.attrelid = o.oid AND att.attnum > 0 AND NOT att.attisdropped,
                     pg_catalog.aclexplode(att.attacl) a
                WHERE a.grantee <> o.owner
            ),
            wanted AS (
                SELECT o.oid, r.oid AS grantee, l.privilege
                FROM ledger l
                JOIN objects o ON o.kind = l.kind AND o.name = l.name
                JOIN pg_catalog.pg_roles r ON r.rolname = l.grantee
            ),
            -- Granted but not wanted; when only the grant option is too much, only it goes.
            extra AS (
                SELECT DISTINCT g.oid, g.grantee,
                       g.privilege_type || coalesce(' (' || pg_catalog.quote_ident(g.column_name) || ')', '') AS privilege,
                       w.oid IS NOT NULL AS grant_option_only
                FROM granted g
                LEFT JOIN wanted w ON g.column_name IS NULL AND (w.oid, w.grantee, w.privilege) = (g.oid, g.grantee, g.privilege_type)
                WHERE w.oid IS NULL OR g.is_grantable
            ),
            missing AS (
                SELECT w.oid, w.grantee, w.privilege
                FROM wanted w
                WHERE NOT EXISTS (SELECT FROM granted g
                                  WHERE g.column_name IS NULL AND (g.oid, g.grantee, g.privilege_type) = (w.oid, w.grantee, w.privilege))
            )
            SELECT 1 AS step, NULL AS statement,
                   pg_catalog.format('db/privileges.sql lists %s %s, which is not in schema public', l.kind, l.name) AS said
            FROM (SELECT DISTINCT kind, name FROM ledger) l
            WHERE NOT EXISTS (SELECT FROM objects o WHERE (o.kind, o.name) = (l.kind, l.name))
            UNION ALL
            SELECT 2,
                   pg_catalog.format('REVOKE %s%s ON %s %s FROM %s CASCADE', CASE WHEN e.grant_option_only THEN 'GRANT OPTION FOR ' END,
                                     e.privilege, o.keyword, pg_catalog.string_agg(o.sql_name, ', ' ORDER BY o.name),
                                     CASE e.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(e.grantee)) END),
                   pg_catalog.format('revoked from %s: %s%s on %s',
                                     CASE e.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(e.grantee) END,
                                     CASE WHEN e.grant_option_only THEN 'the grant option of ' END, e.privilege,
                                     pg_catalog.string_agg(o.name, ', ' ORDER BY o.name))
            FROM extra e JOIN objects o ON o.oid = e.oid
            GROUP BY e.grantee, e.privilege, e.grant_option_only, o.keyword
            UNION ALL
            SELECT 3,
                   pg_catalog.format('GRANT %s ON %s %s TO %I', m.privilege, o.keyword,
                                     pg_catalog.string_agg(o.sql_name, ', ' ORDER BY o.name), pg_catalog.pg_get_userbyid(m.grantee)),
                   pg_catalog.format('granted %s: %s on %s', pg_catalog.pg_get_userbyid(m.grantee), m.privilege,
                                     pg_catalog.string_agg(o.name, ', ' ORDER BY o.name))
            FROM missing m JOIN objects o ON o.oid = m.oid
            GROUP BY m.grantee, m.privilege, o.keyword
            ORDER BY 1, 3
        LOOP
            IF change.statement IS NULL THEN
                RAISE EXCEPTION '%', change.said
                    USING HINT = 'the list in db/privileges.sql must name every object of db/functions, db/views and the migrations, and nothing else';
            END IF;
            -- Revoking with CASCADE can take away a wanted grant that rested on a revoked grant
            -- option; the second pass grants it again, and the third must find nothing left to do.
            IF pass = 3 THEN
                RAISE EXCEPTION 'the ledger''s privileges are still not as db/privileges.sql lists them: % (%)', change.said, change.statement
                    USING HINT = 'run make migrate as the owner of the ledger''s objects, or as a superuser';
            END IF;
            EXECUTE change.statement;
            RAISE NOTICE '%', change.said;
            changed := true;
        END LOOP;
        EXIT WHEN NOT changed;
    END LOOP;
END
$$;
