-- Who may do what; re-applied by every `make migrate`, after the functions, in their transaction.
--   jr_executor (NOLOGIN): EXECUTE on the write and check functions, no table privileges.
--   jr_reader   (NOLOGIN): SELECT on the ledger's tables and views, nothing else.
--   prune_step_attempts and the helpers (jr_step_content_hash, jr_elide_middle): the owner only.
--   PUBLIC: nothing (each function file revokes its default EXECUTE).
-- The roles are created when the migrating user may create roles; otherwise a NOTICE says what a
-- DBA must run, and the grants follow on the next migrate once the roles exist.
DO $$
DECLARE
    role_name text;
    can_create boolean;
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
        GRANT EXECUTE ON FUNCTION
            public.record_step(integer, integer, text, text, text, integer, text, timestamptz, uuid, text),
            public.step_succeeded(integer, integer, text),
            public.set_step_reward(integer, integer, double precision, text, text),
            public.record_exploration(text, text, double precision, double precision, text)
        TO jr_executor;
    END IF;

    IF EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = 'jr_reader') THEN
        GRANT SELECT ON TABLE public.jr_step_rewards, public.jr_step_attempts, public.jr_exploration_log,
            public.jr_step_type_stats, public.jr_task_progress, public.jr_retry_effectiveness,
            public.jr_failure_hot_spots
        TO jr_reader;
    END IF;
END
$$;
