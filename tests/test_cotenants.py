"""A shared production database: another application's login owns it and can create objects in
public. What it plants there must not bind into what make migrate creates, nor run with the rights
of whoever runs make migrate or make uninstall (issue 11, name resolution)."""

import pytest
from pgcluster import run_make

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
