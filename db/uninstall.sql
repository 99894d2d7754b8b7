-- make uninstall: removes everything make migrate created, in one transaction (psql --single-transaction):
-- the views, the functions, the tables with all their rows (the seed's two included) and the
-- migration ledger, then the roles jr_executor, jr_rewarder, jr_reader and jr_owner unless something
-- else still uses them.
-- No CASCADE: if a DBA built something of their own on these tables, this fails and changes nothing.
-- Every setting is LOCAL: behind PgBouncer the server connection goes back to the pool after this
-- transaction, and must take none of them along.
SET LOCAL lock_timeout = '5s';
-- The login acts as itself, whatever role ALTER DATABASE ... SET role names for its sessions.
SET LOCAL ROLE NONE;
-- Names resolve in pg_catalog only: nothing planted in public runs with the uninstaller's rights.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL client_min_messages = notice;

-- An enabled event trigger whose function a role that is not a superuser owns (and may change)
-- would run in every DROP below with the uninstaller's rights: refuse, as make migrate does.
DO $$
DECLARE
    found text;
BEGIN
    -- Outside a transaction block SET LOCAL only warns, and the settings above would be lost.
    IF current_setting('search_path') <> 'pg_catalog, pg_temp' THEN
        RAISE EXCEPTION 'db/uninstall.sql runs in one transaction (psql --single-transaction, as make uninstall does)';
    END IF;
    SELECT string_agg(format('%I (runs %s, owned by %s)', e.evtname, e.evtfoid::regprocedure,
                             pg_get_userbyid(p.proowner)), ', ' ORDER BY e.evtname)
    INTO found
    FROM pg_event_trigger e
    JOIN pg_proc p ON p.oid = e.evtfoid
    JOIN pg_roles o ON o.oid = p.proowner
    WHERE e.evtenabled <> 'D' AND NOT o.rolsuper;
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'refused, and nothing was changed: event trigger % would run in every DROP with your rights', found
            USING HINT = 'a DBA runs ALTER EVENT TRIGGER ... DISABLE, or gives the function to a superuser';
    END IF;
END
$$;

DROP VIEW IF EXISTS public.jr_step_type_stats, public.jr_task_progress, public.jr_retry_effectiveness,
    public.jr_failure_hot_spots;

DROP FUNCTION IF EXISTS
    public.record_step(integer, integer, text, text, text, integer, text, timestamptz, uuid, text, text),
    public.begin_step(integer, integer, text, text, text, integer, timestamptz, uuid, text),
    public.step_succeeded(integer, integer, text),
    public.set_step_reward(integer, integer, double precision, text, text),
    public.record_exploration(text, text, double precision, double precision, text),
    public.prune_step_attempts(interval, integer),
    public.jr_step_content_hash(integer, integer, text, text),
    public.jr_elide_middle(text, integer),
    public.jr_raise_row_violation(text, integer, integer, text, text, text, text);

DROP TABLE IF EXISTS public.jr_step_attempts, public.jr_step_rewards, public.jr_exploration_log,
    public.jr_step_definition_successes, public.jr_schema_definitions, public.jr_schema_migrations;

-- A role goes only when nothing uses it any more: no member logins, no privileges or objects left
-- in any database of the cluster. Otherwise it stays, and a NOTICE says why.
DO $$
DECLARE
    role_name text;
    role_oid oid;
    members text;
    uses bigint;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['jr_executor', 'jr_rewarder', 'jr_reader', 'jr_owner'] LOOP
        SELECT r.oid INTO role_oid FROM pg_catalog.pg_roles r WHERE r.rolname = role_name;
        CONTINUE WHEN role_oid IS NULL;
        SELECT string_agg(m.rolname, ', ' ORDER BY m.rolname) INTO members
        FROM pg_catalog.pg_auth_members am JOIN pg_catalog.pg_roles m ON m.oid = am.member
        WHERE am.roleid = role_oid;
        SELECT count(*) INTO uses
        FROM pg_catalog.pg_shdepend d
        WHERE d.refclassid = 'pg_catalog.pg_authid'::regclass AND d.refobjid = role_oid;
        IF members IS NOT NULL THEN
            RAISE NOTICE 'kept role %: it is granted to % (REVOKE it, then DROP ROLE %)', role_name, members, role_name;
        ELSIF uses > 0 THEN
            RAISE NOTICE 'kept role %: it still holds % privilege(s) or object(s) in this cluster', role_name, uses;
        ELSIF NOT (SELECT r.rolsuper OR r.rolcreaterole FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
            RAISE NOTICE 'kept role %: % may not drop roles; a DBA may run DROP ROLE %', role_name, current_user, role_name;
        ELSE
            EXECUTE format('DROP ROLE %I', role_name);
            RAISE NOTICE 'dropped role %', role_name;
        END IF;
    END LOOP;
END
$$;
