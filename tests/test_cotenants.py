"""A shared production database: another application's login owns it and can create objects in
public. What it plants there must not bind into what make migrate creates, nor run with the rights
of whoever runs make migrate or make uninstall (issue 11, name resolution)."""

from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest
from jr_step_rewards import db as db_calls
from pgcluster import REPO, run_make
from test_migrate import copy_of_db_dir

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LEDGER_FUNCTIONS = sorted(path.stem for path in (REPO / "db" / "functions").glob("*.sql"))

COTENANT = "zammad_app"

# What each planted function does first: raise the co-tenant to superuser when it runs in a
# superuser's session, whatever role that session acts as (SET ROLE back to the session's login is
# allowed to anyone running there), the classic trap for code that resolves names through public.
ESCALATE = f"""
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = session_user) THEN
        EXECUTE pg_catalog.format('SET ROLE %I', session_user);
        EXECUTE 'ALTER ROLE {COTENANT} SUPERUSER';
    END IF;"""
# An equality for varchar that says yes to anything.
PLANTED_OPERATOR = f"""
CREATE FUNCTION public.always_equal(varchar, varchar) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN{ESCALATE}
    RETURN true;
END $$;
CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.always_equal);
"""
# A format() that matches format('DROP ROLE %I', name) better than pg_catalog's variadic one.
PLANTED_FORMAT = f"""
CREATE FUNCTION public.format(text, text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN{ESCALATE}
    RETURN pg_catalog.format($1, $2);
END $$;
"""


@pytest.fixture
def shared_db(bare_cluster):
    """A database owned by another application's login, which may create in public."""
    c = bare_cluster
    c.admin(f"CREATE ROLE {COTENANT} LOGIN")
    db = c.create_database(owner=COTENANT)
    return c, db


def is_superuser(cluster, role):
    return cluster.admin("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,))[0][0]


def test_an_operator_planted_in_public_binds_into_nothing_migrate_creates(shared_db):
    cluster, db = shared_db
    cluster.admin(PLANTED_OPERATOR, dbname=db, user=COTENANT)
    result = cluster.migrate(db)  # as the superuser
    assert result.returncode == 0, result.stdout + result.stderr
    assert not is_superuser(cluster, COTENANT), "the planted operator ran as the superuser"
    # What depends on an operator in public, as the catalog records it (a deparsed CHECK would
    # show a bare "=" either way).
    uses_it = cluster.admin("""
        SELECT pg_describe_object(d.classid, d.objid, d.objsubid) FROM pg_depend d
        JOIN pg_operator o ON d.refclassid = 'pg_operator'::regclass AND d.refobjid = o.oid
        WHERE o.oprnamespace = 'public'::regnamespace""", dbname=db)
    assert uses_it == []
    with pytest.raises(Exception, match="jr_step_rewards_result_known"):
        cluster.admin("INSERT INTO jr_step_rewards (task_id, step_number, step_type, execution_result)"
                      " VALUES (1, 1, 'bash', 'bogus')", dbname=db)
    assert not is_superuser(cluster, COTENANT)


def test_a_function_planted_in_public_does_not_run_in_make_uninstall(shared_db):
    cluster, db = shared_db
    assert cluster.migrate(db).returncode == 0
    cluster.admin(PLANTED_FORMAT, dbname=db, user=COTENANT)
    env = {k: v for k, v in cluster.env(db).items() if k.startswith("PG")}
    result = run_make("uninstall", "CONFIRM=yes", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dropped role jr_executor" in result.stderr
    assert not is_superuser(cluster, COTENANT), "the planted format() ran as the superuser"


# --- Objects found in place (issue 11, item 2) and the ledger's owner (item 1). ---------------
SEED_SCHEMA = FIXTURES / "seed_schema.sql"
# A trigger whose function escalates when it runs with a superuser's rights.
PLANTED_TRIGGER = f"""
CREATE FUNCTION public.audit_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{ESCALATE}
    RETURN NEW;
END $$;
CREATE TRIGGER audit_ledger BEFORE INSERT OR UPDATE ON public.{{table}}
    FOR EACH ROW EXECUTE FUNCTION public.audit_ledger();
"""


def ledger_installed(cluster, db):
    return cluster.admin("SELECT to_regclass('public.jr_schema_migrations') IS NOT NULL", dbname=db)[0][0]


def role_exists(cluster, role):
    return bool(cluster.admin("SELECT FROM pg_roles WHERE rolname = %s", (role,)))


def assert_refused_and_unchanged(cluster, db, result, *named):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "refused, and nothing was changed" in result.stderr
    for text in named:
        assert text in result.stderr, result.stderr
    assert not ledger_installed(cluster, db)
    assert not role_exists(cluster, "jr_owner"), "a refused run created the owner role"
    assert not is_superuser(cluster, COTENANT)


def test_seed_tables_a_cotenant_made_and_armed_with_a_trigger_are_refused(shared_db):
    cluster, db = shared_db
    cluster.psql_file(db, SEED_SCHEMA, user=COTENANT)
    cluster.admin(PLANTED_TRIGGER.format(table="jr_step_rewards"), dbname=db, user=COTENANT)
    result = cluster.migrate(db)  # as the superuser: migration 0003's UPDATE would fire the trigger
    assert_refused_and_unchanged(
        cluster, db, result,
        f"table public.jr_step_rewards belongs to {COTENANT}: if it is the ledger's, run make migrate as {COTENANT}",
        "ALTER TABLE public.jr_step_rewards OWNER TO jr_owner",
        f"table public.jr_step_rewards has trigger audit_ledger (its owner: {COTENANT});"
        " once you know what it does: DROP TRIGGER audit_ledger ON public.jr_step_rewards")


def test_a_migration_ledger_planted_with_an_insert_trigger_is_refused(shared_db):
    cluster, db = shared_db
    cluster.admin("CREATE TABLE public.jr_schema_migrations (version integer PRIMARY KEY, name text,"
                  " checksum text, applied_at timestamptz DEFAULT now(), applied_by text DEFAULT session_user)",
                  dbname=db, user=COTENANT)
    cluster.admin(PLANTED_TRIGGER.format(table="jr_schema_migrations"), dbname=db, user=COTENANT)
    result = cluster.migrate(db)
    assert result.returncode == 1
    assert f"table public.jr_schema_migrations belongs to {COTENANT}" in result.stderr
    assert "DROP TRIGGER audit_ledger ON public.jr_schema_migrations" in result.stderr
    assert cluster.admin("SELECT count(*) FROM jr_schema_migrations", dbname=db) == [(0,)]
    assert not is_superuser(cluster, COTENANT)


def test_a_helper_function_planted_ahead_of_the_ledger_is_refused(shared_db):
    cluster, db = shared_db
    cluster.admin(f"""CREATE FUNCTION public.jr_elide_middle(text, integer) RETURNS text LANGUAGE plpgsql AS $$
                      BEGIN{ESCALATE} RETURN $1; END $$""", dbname=db, user=COTENANT)
    result = cluster.migrate(db)
    assert_refused_and_unchanged(
        cluster, db, result, f"function public.jr_elide_middle(text,integer) belongs to {COTENANT}")


def test_seed_tables_the_migrating_login_made_still_upgrade_in_place(shared_db):
    cluster, db = shared_db
    cluster.psql_file(db, SEED_SCHEMA, user=COTENANT)
    result = cluster.migrate(db, user=COTENANT)
    assert result.returncode == 0, result.stderr
    assert "recorded as the baseline" in result.stdout
    owners = cluster.admin("SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class"
                           " WHERE relnamespace = 'public'::regnamespace AND relname LIKE 'jr\\_%%'", dbname=db)
    assert owners == [(COTENANT,)]


def ledger_owners(cluster, db):
    """The owners of the ledger's tables, views, sequences and functions, and whether each is a
    superuser."""
    return set(cluster.admin("""
        SELECT pg_get_userbyid(relowner), r.rolsuper FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
        WHERE relnamespace = 'public'::regnamespace AND relname LIKE 'jr\\_%%' AND relkind IN ('r', 'v', 'S')
        UNION
        SELECT pg_get_userbyid(proowner), r.rolsuper FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
        WHERE pronamespace = 'public'::regnamespace AND proname = ANY (%s)""", (LEDGER_FUNCTIONS,), dbname=db))


def test_a_superusers_migrate_gives_the_ledger_to_a_nologin_owner_that_is_no_superuser(shared_db):
    cluster, db = shared_db
    result = cluster.migrate(db)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("created role jr_owner (NOLOGIN, not a superuser)")
    assert "owner: jr_owner, not postgres, owns the ledger's objects and ran their DDL" in result.stdout
    assert ledger_owners(cluster, db) == {("jr_owner", False)}
    assert cluster.admin("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'jr_owner'") == [(False, False)]
    # CREATE on public was lent to jr_owner for the DDL alone.
    assert cluster.admin("SELECT has_schema_privilege('jr_owner', 'public', 'CREATE')", dbname=db) == [(False,)]
    # The ledger works: a member of jr_executor records through the definer functions.
    cluster.admin("CREATE ROLE agent LOGIN IN ROLE jr_executor")
    assert cluster.admin("SELECT record_step(1, 1, 'bash', NULL, 'success', 5)", dbname=db, user="agent") \
        == [("recorded",)]

    # An install from before, owned by the superuser, is handed to jr_owner by the next run.
    for (statement,) in cluster.admin("""
            SELECT format('ALTER TABLE public.%I OWNER TO postgres', relname) FROM pg_class
            WHERE relnamespace = 'public'::regnamespace AND relname LIKE 'jr\\_%%' AND relkind IN ('r', 'v')
            UNION ALL
            SELECT format('ALTER FUNCTION %s OWNER TO postgres', oid::regprocedure) FROM pg_proc
            WHERE pronamespace = 'public'::regnamespace AND proowner = 'jr_owner'::regrole""", dbname=db):
        cluster.admin(statement, dbname=db)
    assert ("postgres", True) in ledger_owners(cluster, db)
    result = cluster.migrate(db)
    assert result.returncode == 0, result.stderr
    assert "handed to jr_owner, which owns the ledger: function public.begin_step(" in result.stdout
    assert "table public.jr_step_rewards (from postgres)" in result.stdout
    assert ledger_owners(cluster, db) == {("jr_owner", False)}


def test_an_owner_role_that_is_a_superuser_is_refused(shared_db):
    cluster, db = shared_db
    cluster.admin("CREATE ROLE jr_owner NOLOGIN SUPERUSER")
    result = cluster.migrate(db)
    assert result.returncode == 1
    assert "role jr_owner is a superuser" in result.stderr
    assert "ALTER ROLE jr_owner NOSUPERUSER" in result.stderr
    assert not ledger_installed(cluster, db)


def test_a_dba_may_set_the_owner_up_ahead_for_a_login_that_is_no_superuser(shared_db):
    cluster, db = shared_db
    cluster.admin("CREATE ROLE jr_owner NOLOGIN")
    cluster.admin("CREATE ROLE claude LOGIN IN ROLE jr_owner")
    result = cluster.migrate(db, user="claude")
    assert result.returncode == 1
    assert "GRANT CREATE ON SCHEMA public TO jr_owner" in result.stderr
    cluster.admin("GRANT CREATE ON SCHEMA public TO jr_owner", dbname=db)
    result = cluster.migrate(db, user="claude")
    assert result.returncode == 0, result.stderr
    assert ledger_owners(cluster, db) == {("jr_owner", False)}


def test_a_login_outside_the_owner_role_is_refused_by_a_ledger_the_owner_holds(shared_db):
    cluster, db = shared_db
    assert cluster.migrate(db).returncode == 0  # a superuser's run: jr_owner owns the ledger
    result = cluster.migrate(db, user=COTENANT)  # the database's owner, but not a member of jr_owner
    assert result.returncode == 1
    assert f"belongs to jr_owner: run make migrate as a superuser, or a DBA runs GRANT jr_owner TO {COTENANT}" \
        in result.stderr


@pytest.mark.parametrize("what, plant", [
    ("trigger audit_ledger", PLANTED_TRIGGER.format(table="jr_exploration_log")),
    ("rule keep_a_copy", "CREATE TABLE public.copies (x text); CREATE RULE keep_a_copy AS ON INSERT TO"
                         " public.jr_exploration_log DO ALSO INSERT INTO public.copies VALUES (NEW.jr_type)"),
    ("policy only_mine", "CREATE POLICY only_mine ON public.jr_exploration_log USING (true)"),
])
def test_code_on_the_logins_own_seed_tables_is_refused_too(shared_db, what, plant):
    """Even on tables the migrating login made itself: the ledger has no trigger, rule or policy,
    and one would run inside every SECURITY DEFINER call."""
    cluster, db = shared_db
    cluster.psql_file(db, SEED_SCHEMA, user=COTENANT)
    cluster.admin(plant, dbname=db, user=COTENANT)
    result = cluster.migrate(db, user=COTENANT)
    assert result.returncode == 1, result.stdout
    kind = what.split()[0]
    assert f"table public.jr_exploration_log has {what} (its owner: {COTENANT}); once you know what it does:" \
           f" DROP {kind.upper()} {what.split()[1]} ON public.jr_exploration_log" in result.stderr
    assert not ledger_installed(cluster, db)


# --- Default privileges and grants made by hand (issue 11, item 8). ----------------------------
# What a co-tenant's DBA may have set up long before the ledger came: every table, sequence and
# function a role creates is granted to the co-tenant (in public, and in any schema with the grant
# option), and every table it creates may be read by PUBLIC.
GENEROUS_DEFAULTS = """
ALTER DEFAULT PRIVILEGES FOR ROLE {creator} IN SCHEMA public GRANT ALL ON TABLES TO {cotenant};
ALTER DEFAULT PRIVILEGES FOR ROLE {creator} IN SCHEMA public GRANT ALL ON SEQUENCES TO {cotenant};
ALTER DEFAULT PRIVILEGES FOR ROLE {creator} IN SCHEMA public GRANT ALL ON FUNCTIONS TO {cotenant};
ALTER DEFAULT PRIVILEGES FOR ROLE {creator} GRANT ALL ON TABLES TO {cotenant} WITH GRANT OPTION;
ALTER DEFAULT PRIVILEGES FOR ROLE {creator} GRANT ALL ON SEQUENCES TO {cotenant} WITH GRANT OPTION;
ALTER DEFAULT PRIVILEGES FOR ROLE {creator} GRANT ALL ON FUNCTIONS TO {cotenant} WITH GRANT OPTION;
ALTER DEFAULT PRIVILEGES FOR ROLE {creator} GRANT SELECT ON TABLES TO PUBLIC;
"""
# Every privilege a role holds on a relation, column or function in public, as the server's own
# checks see it (through PUBLIC and memberships too). A fresh database holds only the ledger there.
PRIVILEGES_IN_PUBLIC = """
SELECT c.relname || ': ' || p.privilege
FROM pg_class c,
     unnest(CASE c.relkind WHEN 'S' THEN ARRAY['USAGE', 'SELECT', 'UPDATE']
            ELSE ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'] END) p(privilege)
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
  AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(%(role)s, c.oid, p.privilege)
           WHEN p.privilege IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
               THEN has_any_column_privilege(%(role)s, c.oid, p.privilege)
           ELSE has_table_privilege(%(role)s, c.oid, p.privilege) END
UNION ALL
SELECT p.oid::regprocedure::text || ': EXECUTE' FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace AND has_function_privilege(%(role)s, p.oid, 'EXECUTE')
ORDER BY 1
"""
# Every ACL entry in public, the owners' own aside, as (object, grantee, privilege, grant option).
ACL_IN_PUBLIC = """
SELECT o.name, CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END, a.privilege_type,
       a.is_grantable
FROM (SELECT c.relname::text AS name, c.relowner AS owner,
             coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner)) AS acl
      FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
      UNION ALL
      SELECT c.relname || '.' || att.attname, c.relowner, att.attacl
      FROM pg_class c JOIN pg_attribute att ON att.attrelid = c.oid AND att.attnum > 0
      WHERE c.relnamespace = 'public'::regnamespace
      UNION ALL
      SELECT p.proname::text, p.proowner, coalesce(p.proacl, acldefault('f', p.proowner))
      FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace) o,
     aclexplode(o.acl) a
WHERE a.grantee <> o.owner
ORDER BY 1, 2, 3, 4
"""
# What the co-tenant tries on the ledger once it is installed; each must be refused (42501).
COTENANT_TRIES = [
    "SELECT * FROM public.jr_step_attempts",
    "DELETE FROM public.jr_step_rewards",
    "TRUNCATE public.jr_exploration_log",
    "UPDATE public.jr_schema_migrations SET checksum = 'x'",
    "SELECT * FROM public.jr_task_progress",
    "SELECT nextval('public.jr_step_rewards_id_seq')",
    "SELECT public.prune_step_attempts('0 days')",
    "SELECT public.record_step(1, 1, 'bash', NULL, 'success', 1)",
    "SELECT public.set_step_reward(1, 1, 1.0)",
]


def migrating_login(cluster, db, how):
    """The login that runs make migrate in the shared database, set up as a DBA would, and the roles
    whose default privileges apply to what it creates: the login itself, and jr_owner when the DDL
    runs as jr_owner (a superuser's run, or a member's)."""
    if how == "superuser":
        cluster.admin("CREATE ROLE jr_owner NOLOGIN")
        return "postgres", ["postgres", "jr_owner"]
    cluster.admin("CREATE ROLE jr_executor NOLOGIN; CREATE ROLE jr_rewarder NOLOGIN; CREATE ROLE jr_reader NOLOGIN")
    if how == "member of jr_owner":
        cluster.admin("CREATE ROLE jr_owner NOLOGIN; CREATE ROLE claude LOGIN IN ROLE jr_owner")
        cluster.admin("GRANT CREATE ON SCHEMA public TO jr_owner", dbname=db)
        return "claude", ["claude", "jr_owner"]
    cluster.admin("CREATE ROLE ledger_owner LOGIN")
    cluster.admin("GRANT CREATE ON SCHEMA public TO ledger_owner", dbname=db)
    return "ledger_owner", ["ledger_owner"]


def refused(cluster, db, login, statement):
    """Whether statement, run by login, is refused for want of a privilege."""
    conn = cluster.connect(db, user=login)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    except psycopg2.errors.InsufficientPrivilege:
        return True
    finally:
        conn.close()
    return False


@pytest.mark.parametrize("how", ["superuser", "member of jr_owner", "login that owns it"])
def test_default_privileges_give_a_cotenant_nothing_on_the_ledger(shared_db, how):
    cluster, db = shared_db
    login, creators = migrating_login(cluster, db, how)
    for creator in creators:
        cluster.admin(GENEROUS_DEFAULTS.format(creator=creator, cotenant=COTENANT), dbname=db)

    result = cluster.migrate(db, user=login)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"revoked from {COTENANT}: DELETE on jr_exploration_log, " in result.stdout
    assert f"revoked from {COTENANT}: EXECUTE on begin_step, " in result.stdout
    assert "revoked from PUBLIC: SELECT on jr_exploration_log, " in result.stdout

    for role in (COTENANT, "public"):
        assert cluster.admin(PRIVILEGES_IN_PUBLIC, {"role": role}, dbname=db) == [], role
    assert [entry for entry in cluster.admin(ACL_IN_PUBLIC, dbname=db) if entry[1] in (COTENANT, "PUBLIC")] == []
    assert [statement for statement in COTENANT_TRIES if not refused(cluster, db, COTENANT, statement)] == []


def test_a_grant_made_by_hand_after_install_goes_at_the_next_migrate(shared_db):
    cluster, db = shared_db
    assert cluster.migrate(db).returncode == 0
    installed = cluster.admin(ACL_IN_PUBLIC, dbname=db)
    cluster.admin(f"""
        GRANT DELETE ON public.jr_step_rewards TO {COTENANT};
        GRANT SELECT (error_detail) ON public.jr_step_attempts TO {COTENANT};
        GRANT USAGE ON SEQUENCE public.jr_step_rewards_id_seq TO PUBLIC;
        GRANT SELECT ON public.jr_task_progress TO jr_reader WITH GRANT OPTION;
        GRANT SELECT ON public.jr_exploration_log TO {COTENANT} WITH GRANT OPTION;
        REVOKE SELECT ON public.jr_exploration_log FROM jr_reader;""", dbname=db)
    # The co-tenant passes its grant on, so jr_reader's SELECT rests on the co-tenant's grant option.
    cluster.admin("GRANT SELECT ON public.jr_exploration_log TO jr_reader", dbname=db, user=COTENANT)

    result = cluster.migrate(db)
    assert result.returncode == 0, result.stdout + result.stderr
    said = [line.strip() for line in result.stdout.splitlines() if line.startswith("  notice:")]
    assert sorted(said) == sorted([
        "notice: revoked from PUBLIC: USAGE on jr_step_rewards_id_seq",
        f"notice: revoked from {COTENANT}: DELETE on jr_step_rewards",
        f"notice: revoked from {COTENANT}: SELECT (error_detail) on jr_step_attempts",
        f"notice: revoked from {COTENANT}: SELECT on jr_exploration_log",
        "notice: revoked from jr_reader: the grant option of SELECT on jr_task_progress",
        "notice: granted jr_reader: SELECT on jr_exploration_log",
    ])
    assert cluster.admin(ACL_IN_PUBLIC, dbname=db) == installed
    assert refused(cluster, db, COTENANT, "DELETE FROM public.jr_step_rewards")

    again = cluster.migrate(db)
    assert again.returncode == 0, again.stderr
    assert "notice:" not in again.stdout, "exact privileges: nothing to say"



# --- Code that would run in a superuser's make migrate by other ways (a review's findings). ------
PLANTED_CHECK_FUNCTION = f"""
CREATE FUNCTION public.looks_fine(text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN{ESCALATE}
    RETURN true;
END $$;
"""


def migrate_with_changed_functions(cluster, db, tmp_path, *names):
    """A superuser's run that applies those function files again, so it writes jr_schema_definitions
    once for each."""
    db_dir = copy_of_db_dir(tmp_path)
    for name in names:
        changed = db_dir / "functions" / f"{name}.sql"
        changed.write_text(changed.read_text() + "\n-- changed\n")
    return cluster.migrate(db, db_dir=db_dir)


def plant_a_check_that_calls(cluster, db, function_sql, call):
    """The co-tenant's function, and a CHECK on jr_schema_definitions that reaches it through
    query_to_xml (which the catalog does not record), added by code acting as jr_owner."""
    cluster.admin(function_sql, dbname=db, user=COTENANT)
    cluster.admin("SET ROLE jr_owner; ALTER TABLE public.jr_schema_definitions ADD CONSTRAINT looks_fine CHECK"
                  f" (query_to_xml('SELECT {call}', true, true, '') IS NOT NULL) NOT VALID", dbname=db)


def test_a_check_that_calls_code_outside_the_ledger_is_refused(shared_db, tmp_path):
    """Code acting as jr_owner (a member's, or a function the ledger calls) adds a CHECK that calls
    the co-tenant's function; a superuser's run would evaluate it when it records a definition."""
    cluster, db = shared_db
    assert cluster.migrate(db).returncode == 0
    cluster.admin(PLANTED_CHECK_FUNCTION, dbname=db, user=COTENANT)
    cluster.admin("SET ROLE jr_owner; ALTER TABLE public.jr_schema_definitions"
                  " ADD CONSTRAINT looks_fine CHECK (public.looks_fine(file)) NOT VALID", dbname=db)
    result = migrate_with_changed_functions(cluster, db, tmp_path, "jr_elide_middle")
    assert result.returncode == 1, result.stdout
    assert "table public.jr_schema_definitions uses function public.looks_fine(text), which is not the ledger's" \
        in result.stderr
    assert not is_superuser(cluster, COTENANT)


def test_code_reached_where_the_catalog_cannot_see_it_cannot_take_back_a_superusers_rights(shared_db, tmp_path):
    """query_to_xml runs SQL given as text, so pg_depend records nothing of what this CHECK calls,
    and the check of what is in place cannot see it. What acts as the owner runs inside a
    SECURITY DEFINER function, where PostgreSQL refuses SET ROLE: the co-tenant's code runs with
    jr_owner's rights at most, and the run fails rather than go on."""
    cluster, db = shared_db
    assert cluster.migrate(db).returncode == 0
    plant_a_check_that_calls(cluster, db, PLANTED_CHECK_FUNCTION, "public.looks_fine(''x'')")
    result = migrate_with_changed_functions(cluster, db, tmp_path, "jr_elide_middle")
    assert not is_superuser(cluster, COTENANT)
    assert result.returncode == 1, result.stdout
    assert 'cannot set parameter "role" within security-definer function' in result.stderr


def test_code_acting_as_the_owner_cannot_unlock_a_later_call(shared_db, tmp_path):
    """The owner's code may alter the SECURITY DEFINER function it runs in (jr_owner owns it) into
    SECURITY INVOKER; had the run called that function again, the next call would run as the
    superuser. Each call has a function of its own, so the escalation fails every time."""
    cluster, db = shared_db
    assert cluster.migrate(db).returncode == 0
    plant_a_check_that_calls(cluster, db, f"""
        CREATE FUNCTION public.unlock_and_escalate() RETURNS boolean LANGUAGE plpgsql AS $$
        DECLARE
            f regprocedure;
        BEGIN
            FOR f IN SELECT p.oid FROM pg_proc p WHERE p.pronamespace = pg_my_temp_schema() LOOP
                BEGIN
                    EXECUTE format('ALTER FUNCTION %s SECURITY INVOKER', f);
                EXCEPTION WHEN others THEN NULL;
                END;
            END LOOP;
            BEGIN{ESCALATE}
            EXCEPTION WHEN others THEN NULL;
            END;
            RETURN true;
        END $$""", "public.unlock_and_escalate()")
    result = migrate_with_changed_functions(cluster, db, tmp_path, "jr_elide_middle", "step_succeeded")
    assert "functions and views: applied jr_elide_middle, step_succeeded" in result.stdout, result.stderr
    assert not is_superuser(cluster, COTENANT)


def test_what_the_owners_code_leaves_in_pg_temp_fails_the_run(shared_db, tmp_path):
    """A temporary view named pg_roles would come before pg_catalog's for the next user of this
    server connection (behind PgBouncer, another client)."""
    cluster, db = shared_db
    assert cluster.migrate(db).returncode == 0
    plant_a_check_that_calls(cluster, db, """
        CREATE FUNCTION public.leave_a_view() RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
            CREATE OR REPLACE TEMP VIEW pg_roles AS SELECT 1 AS rolname;
            RETURN true;
        END $$""", "public.leave_a_view()")
    result = migrate_with_changed_functions(cluster, db, tmp_path, "jr_elide_middle", "step_succeeded")
    assert result.returncode == 1, result.stdout
    assert "the owner's code left relation pg_roles, type _pg_roles, type pg_roles in this session's pg_temp" \
        in result.stderr


def test_a_view_in_place_of_a_ledger_table_is_refused(shared_db):
    """Reading it, as make migrate does with jr_schema_definitions, would run its code."""
    cluster, db = shared_db
    assert cluster.migrate(db).returncode == 0
    cluster.admin("""GRANT CREATE ON SCHEMA public TO jr_owner; SET ROLE jr_owner;
        DROP TABLE public.jr_schema_definitions;
        CREATE VIEW public.jr_schema_definitions AS SELECT ''::text AS file, ''::text AS checksum,
            ''::text AS in_catalog, now() AS applied_at;
        RESET ROLE; REVOKE CREATE ON SCHEMA public FROM jr_owner""", dbname=db)
    result = cluster.migrate(db)
    assert result.returncode == 1, result.stdout
    assert "view public.jr_schema_definitions is where the ledger has a table of that name" in result.stderr


PLANTED_EVENT_TRIGGER = f"""
CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN{ESCALATE} END $$;
"""


def test_an_event_trigger_whose_function_a_cotenant_owns_is_refused(shared_db):
    cluster, db = shared_db
    cluster.admin(PLANTED_EVENT_TRIGGER, dbname=db, user=COTENANT)
    cluster.admin("CREATE EVENT TRIGGER audit_ddl ON ddl_command_start EXECUTE FUNCTION public.on_ddl()", dbname=db)
    result = cluster.migrate(db)
    assert result.returncode == 1, result.stdout
    assert (f"event trigger audit_ddl runs public.on_ddl(), which {COTENANT} owns and may change,"
            " in every DDL of this run; a DBA runs ALTER EVENT TRIGGER audit_ddl DISABLE") in result.stderr
    assert not is_superuser(cluster, COTENANT)


def test_make_uninstall_refuses_such_an_event_trigger_too(shared_db):
    cluster, db = shared_db
    assert cluster.migrate(db).returncode == 0
    cluster.admin(PLANTED_EVENT_TRIGGER, dbname=db, user=COTENANT)
    cluster.admin("CREATE EVENT TRIGGER audit_ddl ON ddl_command_start EXECUTE FUNCTION public.on_ddl()", dbname=db)
    env = {k: v for k, v in cluster.env(db).items() if k.startswith("PG")}
    result = run_make("uninstall", "CONFIRM=yes", **env)
    assert result.returncode != 0, result.stdout
    assert ("refused, and nothing was changed: event trigger audit_ddl (runs public.on_ddl(), owned by"
            f" {COTENANT}) would run in every DROP with your rights") in result.stderr
    assert not is_superuser(cluster, COTENANT)
    assert ledger_installed(cluster, db)


def test_a_role_the_database_sets_for_its_sessions_does_not_become_the_runs_login(shared_db):
    """The database's owner may ALTER DATABASE ... SET role: a superuser's session then starts as
    the co-tenant, which would make the co-tenant's own seed tables look like the login's."""
    cluster, db = shared_db
    cluster.psql_file(db, SEED_SCHEMA, user=COTENANT)
    cluster.admin(PLANTED_CHECK_FUNCTION, dbname=db, user=COTENANT)
    cluster.admin("ALTER TABLE public.jr_step_rewards ADD CHECK (public.looks_fine(step_type))", dbname=db,
                  user=COTENANT)
    cluster.admin(f"ALTER DATABASE {db} SET role = {COTENANT}", user=COTENANT)
    result = cluster.migrate(db)
    assert result.returncode == 1, result.stdout
    assert f"table public.jr_step_rewards belongs to {COTENANT}" in result.stderr
    assert not is_superuser(cluster, COTENANT)
    # Without the co-tenant's tables, the superuser's run installs as itself would, the setting
    # notwithstanding: it creates jr_owner, which the co-tenant's role could not.
    cluster.admin("DROP TABLE public.jr_step_rewards, public.jr_exploration_log", dbname=db, user=COTENANT)
    result = cluster.migrate(db)
    assert result.returncode == 0, result.stderr
    assert ledger_owners(cluster, db) == {("jr_owner", False)}


@pytest.mark.parametrize("setup, refusal", [
    (f"CREATE ROLE jr_owner NOLOGIN; GRANT jr_owner TO {COTENANT} WITH ADMIN OPTION",
     f"role jr_owner may be granted by {COTENANT} (ADMIN OPTION)"),
    (f"CREATE ROLE jr_rewarder NOLOGIN; GRANT jr_rewarder TO {COTENANT} WITH ADMIN OPTION",
     f"role jr_rewarder may be granted by {COTENANT} (ADMIN OPTION)"),
    ("CREATE ROLE jr_owner LOGIN", "role jr_owner has LOGIN, which the ledger's owner must not"),
    ("CREATE ROLE jr_owner NOLOGIN; GRANT pg_read_server_files TO jr_owner",
     "role jr_owner is a member of pg_read_server_files"),
])
def test_ledger_roles_someone_else_may_hand_out_or_that_hold_more_are_refused(shared_db, setup, refusal):
    """On PostgreSQL 16+, a co-tenant with CREATEROLE that creates jr_owner or jr_rewarder first
    holds ADMIN OPTION on it (acted out here with an explicit grant, so on any version)."""
    cluster, db = shared_db
    cluster.admin(setup)
    result = cluster.migrate(db)
    assert result.returncode == 1, result.stdout
    assert refusal in result.stderr
    assert not ledger_installed(cluster, db)


# Overloads a co-tenant creates in public after the install, each a better match than the
# ledger's function for a call whose values are untyped; each logs that it ran.
PLANTED_OVERLOADS = """
CREATE TABLE public.captured (who text, what text);
GRANT INSERT ON public.captured TO PUBLIC;
CREATE FUNCTION public.record_step(task_id integer, step_number integer, step_type text, target_file text,
    execution_result text, execution_time_ms text, error_detail text, recorded_at timestamptz, event_id uuid,
    executor text, step_definition_hash text) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO public.captured VALUES (current_user, 'record_step from begin_step'); SELECT 'recorded' $$;
CREATE FUNCTION public.record_step(task_id integer, step_number integer, step_type text, target_file text,
    execution_result text, execution_time_ms integer, error_detail text, recorded_at text, event_id text,
    executor text, step_definition_hash text) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO public.captured VALUES (current_user, 'record_step ' || error_detail); SELECT 'recorded' $$;
CREATE FUNCTION public.begin_step(task_id integer, step_number integer, step_type text, target_file text,
    step_definition_hash text, occurrence integer, recorded_at text, event_id text, executor text)
    RETURNS text LANGUAGE sql AS $$ INSERT INTO public.captured VALUES (current_user, 'begin_step'); SELECT 'skip' $$;
"""


def test_overloads_planted_after_the_install_catch_no_call(shared_db):
    """Every call the client makes, and every call between the ledger's functions, names each value's
    exact type: an overload with text where the ledger has timestamptz, uuid or integer never wins."""
    cluster, db = shared_db
    assert cluster.migrate(db).returncode == 0
    cluster.admin("CREATE ROLE agent LOGIN IN ROLE jr_executor")
    cluster.admin(PLANTED_OVERLOADS, dbname=db, user=COTENANT)
    conn = cluster.connect(db, user="agent")
    conn.autocommit = True
    try:
        assert db_calls.begin_step(conn, 7, 1, "bash", None, None, 1, None, None, "exec") == "run"
        assert db_calls.record_step(conn, 7, 1, "bash", None, "failed", 5, "curl -u admin:SECRET failed",
                                    None, None, "exec") == "recorded"
    finally:
        conn.close()
    assert cluster.admin("SELECT who, what FROM public.captured", dbname=db) == []
    assert cluster.admin("SELECT execution_result FROM jr_step_rewards WHERE task_id = 7", dbname=db) \
        == [("failed",)]


@pytest.mark.parametrize("value", [True, 7.6])
def test_the_typed_calls_refuse_a_bool_or_a_fraction_for_an_integer(shared_db, value):
    """The casts that make each call exact do not make True a 1 or 7.6 an 8: the reward stays off
    the wrong step."""
    cluster, db = shared_db
    assert cluster.migrate(db).returncode == 0
    conn = cluster.connect(db)
    conn.autocommit = True
    try:
        with pytest.raises(psycopg2.errors.InvalidTextRepresentation):
            db_calls.set_step_reward(conn, value, 1, 0.5)
        with pytest.raises(psycopg2.errors.InvalidTextRepresentation):
            db_calls.step_succeeded(conn, 1, value)
    finally:
        conn.close()
