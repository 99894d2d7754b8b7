-- Who may do what; re-applied by every `make migrate`, after the functions, in their transaction.
--   jr_executor (NOLOGIN): EXECUTE on the write and check functions (begin_step, record_step,
--                          step_succeeded, set_step_reward, record_exploration), no table privileges.
--   jr_reader   (NOLOGIN): SELECT on the ledger's tables and views, nothing else.
--   prune_step_attempts and the helpers (jr_step_content_hash, jr_elide_middle): the owner only.
--   PUBLIC: nothing (each function file revokes its default EXECUTE).
-- The roles are created when the migrating user may create roles; otherwise a NOTICE says what a
-- DBA must run, and the grants follow on the next migrate once the roles exist. A NOTICE names
-- what a role gained (compared before and after the GRANT), so the run that grants says so and
-- the runs after it stay quiet.
DO $$
DECLARE
    role_name text;
    can_create boolean;
    held_before oid[];
    gained text;
BEGIN
    SELECT r.rolsuper OR r.rolcreaterole INTO can_create
    FROM pg_catalog.pg_roles r
    WHERE r.rolname = current_user;

    FOREACH role_name IN ARRAY ARRAY['jr_executor', 'jr_reader'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
            IF can_create THEN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
                RAISE NOTICE 'created role %', role_name;
            ELSE
                RAISE NOTICE 'role % does not exist and % may not create roles; a DBA must run: CREATE ROLE % NOLOGIN; then run make migrate again to grant its privileges',
                    role_name, current_user, role_name;
            END IF;
        END IF;
    END LOOP;

    IF EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = 'jr_executor') THEN
        held_before := ARRAY(SELECT p.oid FROM pg_catalog.pg_proc p
                             WHERE p.pronamespace = 'public'::regnamespace
                               AND pg_catalog.has_function_privilege('jr_executor', p.oid, 'EXECUTE'));
        GRANT EXECUTE ON FUNCTION
            public.record_step(integer, integer, text, text, text, integer, text, timestamptz, uuid, text, text),
            public.begin_step(integer, integer, text, text, text, integer, timestamptz, uuid, text),
            public.step_succeeded(integer, integer, text),
            public.set_step_reward(integer, integer, double precision, text, text),
            public.record_exploration(text, text, double precision, double precision, text)
        TO jr_executor;
        SELECT pg_catalog.string_agg(p.proname, ', ' ORDER BY p.proname) INTO gained
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace AND p.oid <> ALL (held_before)
          AND pg_catalog.has_function_privilege('jr_executor', p.oid, 'EXECUTE');
        IF gained IS NOT NULL THEN
            RAISE NOTICE 'granted jr_executor: EXECUTE on %', gained;
        END IF;
    END IF;

    IF EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = 'jr_reader') THEN
        held_before := ARRAY(SELECT c.oid FROM pg_catalog.pg_class c
                             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
                               AND pg_catalog.has_table_privilege('jr_reader', c.oid, 'SELECT'));
        GRANT SELECT ON TABLE public.jr_step_rewards, public.jr_step_attempts, public.jr_exploration_log,
            public.jr_step_definition_successes, public.jr_step_type_stats, public.jr_task_progress, public.jr_retry_effectiveness,
            public.jr_failure_hot_spots
        TO jr_reader;
        SELECT pg_catalog.string_agg(c.relname, ', ' ORDER BY c.relname) INTO gained
        FROM pg_catalog.pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') AND c.oid <> ALL (held_before)
          AND pg_catalog.has_table_privilege('jr_reader', c.oid, 'SELECT');
        IF gained IS NOT NULL THEN
            RAISE NOTICE 'granted jr_reader: SELECT on %', gained;
        END IF;
    END IF;
END
$$;
