"""A shared production database: another application's login owns it and can create objects in
public. What it plants there must not bind into what make migrate creates, nor run with the rights
of whoever runs make migrate or make uninstall (issue 11, name resolution)."""

from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest
from pgcluster import run_make

FIXTURES = Path(__file__).resolve().parent / "fixtures"

COTENANT = "zammad_app"

# What each planted function does first: raise the co-tenant to superuser when whoever calls it
# may do so, the classic trap for code that resolves names through public.
ESCALATE = f"""
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
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
    uses_it = cluster.admin("""
        SELECT 'constraint ' || conname FROM pg_constraint
        WHERE pg_get_constraintdef(oid) LIKE '%%OPERATOR(public.=)%%'
        UNION ALL
        SELECT 'view ' || c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
          AND c.relkind = 'v' AND pg_get_viewdef(c.oid) LIKE '%%OPERATOR(public.=)%%'""", dbname=db)
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
    """The owners of the ledger's tables, views and functions, and whether each is a superuser."""
    return set(cluster.admin("""
        SELECT pg_get_userbyid(relowner), r.rolsuper FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
        WHERE relnamespace = 'public'::regnamespace AND relname LIKE 'jr\\_%%' AND relkind IN ('r', 'v', 'S')
        UNION
        SELECT pg_get_userbyid(proowner), r.rolsuper FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
        WHERE pronamespace = 'public'::regnamespace AND proname IN ('record_step', 'begin_step', 'step_succeeded',
            'set_step_reward', 'record_exploration', 'prune_step_attempts', 'jr_elide_middle')""", dbname=db))


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
