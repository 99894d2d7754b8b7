#!/usr/bin/env python3
"""Install or upgrade the step ledger in the database the libpq variables name (PGHOST, PGPORT,
PGUSER, PGDATABASE, PGPASSWORD or ~/.pgpass, PGSERVICE).

1. Applies the pending migrations db/migrations/NNNN_name.sql in order, each in one transaction
   together with its row in public.jr_schema_migrations. An applied migration whose file has
   changed since is refused, and so is a database that has migrations this checkout lacks. Where
   the seed's SQL was run by hand, 0001 is recorded as the baseline and said to be one.
2. Applies again the db/functions/*.sql and db/views/*.sql files that changed since they were last
   applied (all of them after a migration), then db/privileges.sql, in one transaction, and names
   the ledger's CHECKs still NOT VALID. An unchanged file is not run: CREATE OR REPLACE VIEW would
   wait for every open transaction that read the view.

Who owns the ledger: never a superuser, since its SECURITY DEFINER functions act with their owner's
rights. A superuser's run does its DDL as the NOLOGIN role jr_owner (created when missing, given
CREATE on public only while the DDL runs) and hands jr_owner what an earlier run left to a
superuser; a login that is a member of jr_owner (set up by a DBA) acts as jr_owner too; any other
login owns what it creates. Before changing anything, each transaction looks at the ledger's objects
already in place: one owned by another role, or carrying a trigger, a rule or a policy, is refused
by name, with what a DBA must do, and nothing changes.

A migration's NOTICEs are not shown: they would repeat themselves (0004 re-examines what 0003 left
NOT VALID) and, on a seed-made database, list what already exists. Instead each CHECK a migration
leaves NOT VALID is reported from the catalog once, with the rows that break it, and every later
run names the ones still NOT VALID. A migration with something to say must RAISE WARNING.

Every transaction stands alone, because behind PgBouncer in transaction pooling consecutive
transactions may run on different server connections, taking no session state with them: each
waits up to JR_MIGRATE_WAIT (default 120s) for a transaction-level advisory lock, so concurrent runs
take turns, re-reads the ledger under it, and gives its DDL lock_timeout JR_LOCK_TIMEOUT (default
5s) with SET LOCAL, so DDL fails clearly instead of queueing behind a long lock on a busy database.
Exit status: 0 when the schema is current, 1 with a message on stderr otherwise.
"""

import contextlib
import dataclasses
import hashlib
import os
import re
import sys
import uuid
from pathlib import Path

import psycopg2
import psycopg2.errors
from jr_step_rewards.failures import classify
from psycopg2 import sql

DB_DIR = Path(__file__).resolve().parent
MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any fixed number unique to this project: pg_advisory_xact_lock takes a bigint key.
ADVISORY_LOCK_KEY = 7_324_001_202_601
# 0001 is the seed's own SQL (IF NOT EXISTS throughout): where either of its tables is already
# there, the seed was run by hand and 0001 is the baseline, not news.
BASELINE_VERSION = 1
SEED_TABLES = ["public.jr_step_rewards", "public.jr_exploration_log"]
# The role that owns the ledger when a superuser (or a member of it) migrates.
OWNER_ROLE = "jr_owner"
# Every relation in public that make migrate creates, and its kind as pg_class.relkind gives it
# (tests/test_migrate.py keeps this list true).
LEDGER_RELATIONS = {
    **dict.fromkeys(["jr_step_rewards", "jr_exploration_log", "jr_step_attempts", "jr_step_definition_successes",
                     "jr_schema_migrations", "jr_schema_definitions"], "r"),
    **dict.fromkeys(["jr_step_rewards_id_seq", "jr_exploration_log_id_seq", "jr_step_attempts_id_seq"], "S"),
    **dict.fromkeys(["jr_step_rewards_pkey", "jr_step_rewards_task_id_step_number_key", "idx_step_rewards_task",
                     "idx_step_rewards_type", "idx_step_rewards_outcome", "jr_exploration_log_pkey",
                     "idx_exploration_jr", "jr_step_attempts_pkey", "jr_step_attempts_event_id_key",
                     "idx_step_attempts_step", "idx_step_attempts_received_at", "jr_step_definition_successes_pkey",
                     "jr_schema_migrations_pkey", "jr_schema_definitions_pkey"], "i"),
    **dict.fromkeys(["jr_step_type_stats", "jr_task_progress", "jr_retry_effectiveness", "jr_failure_hot_spots"], "v"),
}
# The roles db/privileges.sql creates and grants, and the owner's.
LEDGER_ROLES = ["jr_executor", "jr_rewarder", "jr_reader", OWNER_ROLE]
# One function per file, named after it; one view per file likewise.
DEFINITION_DIRS = ["functions", "views"]
LEDGER_FUNCTIONS = sorted(path.stem for path in (DB_DIR / "functions").glob("*.sql"))
LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS public.jr_schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE public.jr_schema_migrations IS
    'Migrations of the Jr step ledger applied to this database, written by make migrate.';
COMMENT ON COLUMN public.jr_schema_migrations.version IS 'The NNNN of db/migrations/NNNN_name.sql.';
COMMENT ON COLUMN public.jr_schema_migrations.name IS 'The file name.';
COMMENT ON COLUMN public.jr_schema_migrations.checksum IS 'SHA-256 of the file as applied; a changed file is refused.';
COMMENT ON COLUMN public.jr_schema_migrations.applied_at IS 'When it was applied.';
COMMENT ON COLUMN public.jr_schema_migrations.applied_by IS 'The login that applied it.';
"""
# The ledger's CHECKs that existing rows break: every table of the ledger is public.jr_*, and the
# rest of the database belongs to another application, whose constraints are not ours to report.
NOT_VALID_CHECKS = r"""
SELECT t.relname::text, c.conname::text, pg_catalog.pg_get_expr(c.conbin, c.conrelid),
       pg_catalog.format('ALTER TABLE %I.%I VALIDATE CONSTRAINT %I;', n.nspname, t.relname, c.conname)
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class t ON t.oid = c.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE c.contype = 'c' AND NOT c.convalidated AND n.nspname = 'public' AND t.relname LIKE 'jr\_%'
ORDER BY t.relname, c.conname
"""
# What stands in the way, before a transaction changes anything. Each would run code, or let a
# role other than the owner run code, with the rights of whoever migrates or of the ledger's
# SECURITY DEFINER functions (AS_OWNER_FUNCTIONS is the backstop for what the catalog cannot show):
#   - of the ledger's objects already in place: an owner other than %(owners)s (overloads of the
#     ledger's function names count: a call could bind to one); more than one function of a name
#     the ledger has one of (an extra overload makes its calls ambiguous, or takes them); a trigger,
#     a rule or a row-level policy, none of which the ledger has; a CHECK, a default, an index or a
#     column type that uses anything outside pg_catalog but the ledger's own relations; a relation
#     of another kind than the ledger's of that name (a view where it has a table runs code when read);
#   - an enabled event trigger whose function a role that is not a superuser owns (and may change);
#   - of the ledger's roles %(roles)s: ADMIN OPTION held by a role that is neither a superuser nor
#     the login, nor controls the login (it could grant the role to itself); and of the owner role
#     %(owner_role)s, when the run uses it: an attribute beyond NOLOGIN, or membership in another role.
# Rows: (kind, name, its owner or holder, what is found, detail); refuse_what_is_in_the_way words them.
FOUND_IN_PLACE = r"""
WITH relation AS (
    SELECT c.oid, pg_catalog.format('public.%%I', c.relname) AS name, c.relowner, c.relkind, l.relkind AS expected,
           CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'TABLE' WHEN 'v' THEN 'VIEW'
                          WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'i' THEN 'INDEX'
                          ELSE 'relation' END AS kind
    FROM pg_catalog.pg_class c
    JOIN ROWS FROM (pg_catalog.unnest(%(relations)s::text[]), pg_catalog.unnest(%(relkinds)s::"char"[]))
         AS l(name, relkind) ON l.name = c.relname
    WHERE c.relnamespace = 'public'::pg_catalog.regnamespace
),
-- A relation and what hangs off it: constraints, defaults, rules (a view's query) and indexes.
part AS (
    SELECT r.oid AS relation, 'pg_catalog.pg_class'::pg_catalog.regclass AS classid, r.oid AS objid FROM relation r
    UNION ALL
    SELECT c.conrelid, 'pg_catalog.pg_constraint'::pg_catalog.regclass, c.oid
    FROM pg_catalog.pg_constraint c WHERE c.conrelid IN (SELECT oid FROM relation)
    UNION ALL
    SELECT d.adrelid, 'pg_catalog.pg_attrdef'::pg_catalog.regclass, d.oid
    FROM pg_catalog.pg_attrdef d WHERE d.adrelid IN (SELECT oid FROM relation)
    UNION ALL
    SELECT w.ev_class, 'pg_catalog.pg_rewrite'::pg_catalog.regclass, w.oid
    FROM pg_catalog.pg_rewrite w WHERE w.ev_class IN (SELECT oid FROM relation)
    UNION ALL
    SELECT i.indrelid, 'pg_catalog.pg_class'::pg_catalog.regclass, i.indexrelid
    FROM pg_catalog.pg_index i WHERE i.indrelid IN (SELECT oid FROM relation)
)
SELECT r.kind, r.name, pg_catalog.pg_get_userbyid(r.relowner), 'owner', NULL
FROM relation r WHERE r.relowner <> ALL (%(owners)s::pg_catalog.oid[])
UNION ALL
SELECT r.kind, r.name, pg_catalog.pg_get_userbyid(r.relowner), 'not its kind', r.expected::text
FROM relation r WHERE r.relkind <> r.expected
UNION ALL
SELECT 'FUNCTION', p.oid::pg_catalog.regprocedure::text, pg_catalog.pg_get_userbyid(p.proowner), 'owner', NULL
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = 'public'::pg_catalog.regnamespace AND p.proname = ANY (%(functions)s)
  AND p.proowner <> ALL (%(owners)s::pg_catalog.oid[])
UNION ALL
SELECT 'FUNCTION', p.oid::pg_catalog.regprocedure::text, pg_catalog.pg_get_userbyid(p.proowner), 'overload', NULL
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = 'public'::pg_catalog.regnamespace AND p.proname = ANY (%(functions)s)
  AND (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc q
       WHERE q.pronamespace = p.pronamespace AND q.proname = p.proname) > 1
UNION ALL
SELECT r.kind, r.name, pg_catalog.pg_get_userbyid(r.relowner), 'trigger', pg_catalog.quote_ident(t.tgname)
FROM relation r JOIN pg_catalog.pg_trigger t ON t.tgrelid = r.oid WHERE NOT t.tgisinternal
UNION ALL
SELECT r.kind, r.name, pg_catalog.pg_get_userbyid(r.relowner), 'rule', pg_catalog.quote_ident(w.rulename)
FROM relation r JOIN pg_catalog.pg_rewrite w ON w.ev_class = r.oid WHERE w.rulename <> '_RETURN'
UNION ALL
SELECT r.kind, r.name, pg_catalog.pg_get_userbyid(r.relowner), 'policy', pg_catalog.quote_ident(p.polname)
FROM relation r JOIN pg_catalog.pg_policy p ON p.polrelid = r.oid
UNION ALL
SELECT DISTINCT r.kind, r.name, pg_catalog.pg_get_userbyid(r.relowner), 'uses',
       pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0)
FROM part JOIN relation r ON r.oid = part.relation
JOIN pg_catalog.pg_depend d ON d.classid = part.classid AND d.objid = part.objid
WHERE d.refclassid NOT IN ('pg_catalog.pg_namespace'::pg_catalog.regclass,
                           'pg_catalog.pg_constraint'::pg_catalog.regclass)
  AND (pg_catalog.pg_identify_object(d.refclassid, d.refobjid, 0)).schema IS DISTINCT FROM 'pg_catalog'
  AND NOT (d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid IN (SELECT oid FROM relation))
UNION ALL
SELECT 'EVENT TRIGGER', pg_catalog.quote_ident(e.evtname), pg_catalog.pg_get_userbyid(p.proowner), 'event trigger',
       e.evtfoid::pg_catalog.regprocedure::text
FROM pg_catalog.pg_event_trigger e
JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid
JOIN pg_catalog.pg_roles o ON o.oid = p.proowner
WHERE e.evtenabled <> 'D' AND NOT o.rolsuper
UNION ALL
SELECT 'ROLE', pg_catalog.quote_ident(g.rolname), pg_catalog.pg_get_userbyid(m.member), 'admin', NULL
FROM pg_catalog.pg_auth_members m
JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
JOIN pg_catalog.pg_roles h ON h.oid = m.member
WHERE g.rolname = ANY (%(roles)s) AND m.admin_option AND NOT h.rolsuper AND h.rolname <> session_user
  -- A role that already has the login's rights, or may grant itself the login, gains nothing: on
  -- PostgreSQL 16+ a DBA with CREATEROLE who created the login and the roles holds ADMIN on both.
  AND NOT pg_catalog.pg_has_role(h.oid, session_user, CASE WHEN
          pg_catalog.current_setting('server_version_num')::integer >= 160000 THEN 'SET' ELSE 'MEMBER' END)
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_auth_members a
                  WHERE a.roleid = (SELECT l.oid FROM pg_catalog.pg_roles l WHERE l.rolname = session_user)
                    AND a.member = h.oid AND a.admin_option)
UNION ALL
SELECT 'ROLE', pg_catalog.quote_ident(o.rolname), NULL, 'attribute', a.attribute
FROM pg_catalog.pg_roles o,
     LATERAL (VALUES ('LOGIN', o.rolcanlogin), ('CREATEROLE', o.rolcreaterole), ('CREATEDB', o.rolcreatedb),
                     ('BYPASSRLS', o.rolbypassrls), ('REPLICATION', o.rolreplication)) a(attribute, held)
WHERE o.rolname = %(owner_role)s AND a.held
UNION ALL
SELECT 'ROLE', pg_catalog.quote_ident(o.rolname), NULL, 'member of', pg_catalog.quote_ident(g.rolname)
FROM pg_catalog.pg_auth_members m
JOIN pg_catalog.pg_roles o ON o.oid = m.member
JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
WHERE o.rolname = %(owner_role)s
ORDER BY 1, 2, 4, 5
"""
# The ledger's tables, views and functions that belong to one of %(from)s rather than the owner:
# each as the ALTER ... OWNER TO statement that hands it over (a table's indexes and sequences
# follow it), and what to call it.
TO_HAND_OVER = r"""
SELECT pg_catalog.format('ALTER %%s public.%%I OWNER TO %%I', k.kind, c.relname, %(owner)s),
       pg_catalog.format('%%s public.%%I (from %%s)', pg_catalog.lower(k.kind), c.relname,
                         pg_catalog.pg_get_userbyid(c.relowner))
FROM pg_catalog.pg_class c,
     LATERAL (SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END AS kind) k
WHERE c.relnamespace = 'public'::pg_catalog.regnamespace AND c.relname = ANY (%(relations)s)
  AND c.relkind IN ('r', 'p', 'v') AND c.relowner = ANY (%(from)s::pg_catalog.oid[])
UNION ALL
SELECT pg_catalog.format('ALTER FUNCTION %%s OWNER TO %%I', p.oid::pg_catalog.regprocedure, %(owner)s),
       pg_catalog.format('function %%s (from %%s)', p.oid::pg_catalog.regprocedure,
                         pg_catalog.pg_get_userbyid(p.proowner))
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = 'public'::pg_catalog.regnamespace AND p.proname = ANY (%(functions)s)
  AND p.proowner = ANY (%(from)s::pg_catalog.oid[])
ORDER BY 2
"""
PUBLIC_RELATIONS = """
SELECT c.relname::text FROM pg_catalog.pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'i')
"""


class MigrationError(Exception):
    """A refusal or failure, with a message for the person running migrate."""


def migration_files(directory):
    """The migrations on disk as (version, path), in order; a stray or duplicate name is an error."""
    found = {}
    for path in sorted(directory.glob("*")):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: not a migration name (expected NNNN_lowercase_name.sql)")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path.name} and {found[version].name} share version {version:04d}")
        found[version] = path
    return sorted(found.items())


def checksum(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def report_notices(conn):
    for notice in conn.notices:
        print("  " + notice.strip().replace("NOTICE:  ", "notice: ").replace("WARNING:  ", "warning: "))
    del conn.notices[:]


def act_as_the_login(cur):
    """For the rest of the transaction, the login acts as itself: a role setting that the
    database's owner put on the database (ALTER DATABASE ... SET role) would otherwise make a
    superuser's run act as, and decide the ledger's owner as, that role."""
    cur.execute("SET LOCAL ROLE NONE")


def pin_search_path(cur):
    """For the rest of the transaction, names resolve in pg_catalog (and pg_temp, last) only: an
    operator, function or type someone planted in public cannot bind into a CHECK, a view or a
    default that the migration creates, nor run with the migrator's rights."""
    cur.execute("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true)")


@dataclasses.dataclass
class Owner:
    """Who owns the ledger in this run, decided before anything changes."""
    role: str  # owns every object the run creates
    login: str  # the session's login (session_user), acting as itself
    accepted: list  # oids of the roles whose objects found in place are not refused
    hand_over_from: list = dataclasses.field(default_factory=list)  # oids whose objects go to role
    login_is_superuser: bool = False
    create_role: bool = False  # role does not exist yet; the login creates it
    lend_create: bool = False  # role may not create in public; it may while the DDL runs


# pg_has_role's 'SET' (PostgreSQL 16+) is what SET ROLE needs; before 16, membership is enough.
OWNER_FACTS = """
SELECT r.oid, r.rolname::text, r.rolsuper, o.oid, o.rolsuper,
       o.oid IS NOT NULL AND pg_catalog.pg_has_role(r.oid, o.oid, CASE WHEN
           pg_catalog.current_setting('server_version_num')::integer >= 160000 THEN 'SET' ELSE 'MEMBER' END),
       o.oid IS NOT NULL AND pg_catalog.has_schema_privilege(o.oid, 'public', 'CREATE'),
       ARRAY(SELECT s.oid FROM pg_catalog.pg_roles s WHERE s.rolsuper)
FROM pg_catalog.pg_roles r LEFT JOIN pg_catalog.pg_roles o ON o.rolname = %s
WHERE r.rolname = session_user  -- act_as_the_login made them one
"""


def ledger_owner(cur):
    """A superuser's run, and a member of OWNER_ROLE's, own the ledger as OWNER_ROLE, to which a
    superuser hands what an earlier run left to a superuser (and a member what it owns itself); any
    other login owns what it creates."""
    cur.execute(OWNER_FACTS, (OWNER_ROLE,))
    login_oid, login, login_super, owner_oid, owner_super, member, owner_creates, superusers = cur.fetchone()
    if owner_super and (login_super or member):
        raise MigrationError(
            f"role {OWNER_ROLE} is a superuser, so the ledger's SECURITY DEFINER functions would run with superuser"
            f" rights; a DBA must run: ALTER ROLE {OWNER_ROLE} NOSUPERUSER; then run make migrate again")
    if login_super:
        return Owner(OWNER_ROLE, login, accepted=[o for o in (owner_oid, *superusers) if o is not None],
                     hand_over_from=superusers, login_is_superuser=True, create_role=owner_oid is None,
                     lend_create=not owner_creates)
    if member:
        if not owner_creates:
            raise MigrationError(
                f"{login} acts as {OWNER_ROLE}, which may not create in schema public; a DBA must run:"
                f" GRANT CREATE ON SCHEMA public TO {OWNER_ROLE}; then run make migrate again")
        return Owner(OWNER_ROLE, login, accepted=[owner_oid, login_oid], hand_over_from=[login_oid])
    return Owner(login, login, accepted=[login_oid])


def refuse_what_is_in_the_way(cur, owner):
    """Refuse, naming each with what a DBA must do, what FOUND_IN_PLACE finds."""
    cur.execute(FOUND_IN_PLACE, {"relations": list(LEDGER_RELATIONS), "relkinds": list(LEDGER_RELATIONS.values()),
                                 "functions": LEDGER_FUNCTIONS,
                                 "owners": owner.accepted, "roles": LEDGER_ROLES,
                                 "owner_role": OWNER_ROLE if owner.role == OWNER_ROLE else None})
    lines = [in_the_way(owner, *row) for row in cur.fetchall()]
    if lines:
        raise MigrationError(
            "refused, and nothing was changed: what is below would run code, or let a role other than the ledger's"
            f" owner ({owner.role}) run code, with the rights of this run or of the ledger's SECURITY DEFINER"
            " functions:\n  " + "\n  ".join(lines))


def in_the_way(owner, kind, name, holder, what, detail):
    """One line of the refusal: the object, what is wrong with it, and what a DBA must do."""
    thing = f"{kind.lower()} {name}"
    if what in ("trigger", "rule", "policy"):
        return (f"{thing} has {what} {detail} (its owner: {holder}); once you know what it does:"
                f" DROP {what.upper()} {detail} ON {name}")
    if what == "uses":
        return (f"{thing} uses {detail}, which is not the ledger's (a CHECK, a default, an index or a column's type"
                " refers to it); once you know what it does, remove that use")
    if what == "not its kind":
        expected = {"r": "a table", "v": "a view", "S": "a sequence", "i": "an index"}[detail]
        return (f"{thing} is where the ledger has {expected} of that name (its owner: {holder}); reading it could"
                " run its code; once you know what it is, a DBA drops or renames it")
    if what == "overload":
        return (f"{thing} is one of several functions of that name in schema public, where the ledger has one:"
                " a call may bind to the other, or fail as ambiguous; a DBA drops the one that is not the ledger's"
                f" (db/functions/{name.split('(')[0].removeprefix('public.')}.sql defines the ledger's)")
    if what == "event trigger":
        return (f"{thing} runs {detail}, which {holder} owns and may change, in every DDL of this run;"
                f" a DBA runs ALTER EVENT TRIGGER {name} DISABLE, or gives the function to a superuser")
    if what == "admin":
        return (f"{thing} may be granted by {holder} (ADMIN OPTION), to itself too, which would let it act as"
                f" {name}; if that is not meant, a DBA runs REVOKE {name} FROM {holder}")
    if what == "attribute":
        return f"{thing} has {detail}, which the ledger's owner must not; a DBA runs ALTER ROLE {name} NO{detail}"
    if what == "member of":
        return (f"{thing} is a member of {detail}, so the ledger's functions would act with its rights too;"
                f" a DBA runs REVOKE {detail} FROM {name}")
    if holder == OWNER_ROLE:
        return (f"{thing} belongs to {OWNER_ROLE}: run make migrate as a superuser,"
                f" or a DBA runs GRANT {OWNER_ROLE} TO {owner.login}")
    if kind in ("INDEX", "SEQUENCE"):
        return f"{thing} belongs to {holder}: if it is not the ledger's, drop or rename it"
    return (f"{thing} belongs to {holder}: if it is the ledger's, run make migrate as {holder},"
            f" or check it and run ALTER {kind} {name} OWNER TO {owner.role}; if it is not, drop or rename it")


def take_charge(cur, owner):
    """Make owner.role the owner of the ledger's objects in place; return the lines that say what changed."""
    said = []
    if owner.create_role:
        cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(owner.role)))
        said.append(f"created role {owner.role} (NOLOGIN, not a superuser): it owns the ledger, so its SECURITY"
                    f" DEFINER functions never run with {owner.login}'s superuser rights")
    cur.execute(TO_HAND_OVER, {"relations": list(LEDGER_RELATIONS), "functions": LEDGER_FUNCTIONS,
                               "from": owner.hand_over_from, "owner": owner.role})
    handed = []
    for statement, what in cur.fetchall():
        cur.execute(statement)
        handed.append(what)
    if handed:
        said.append(f"handed to {owner.role}, which owns the ledger: {', '.join(handed)}")
    return said


# In a superuser's run, what acts as the owner goes through a SECURITY DEFINER function that the
# owner owns: inside one, PostgreSQL refuses SET ROLE and SET SESSION AUTHORIZATION, so no code
# reached from there (a CHECK, a default, a trigger, what any of them calls) can take back the
# superuser's rights, as it could after SET ROLE alone. Each call gets a function of its own, made
# in this session's pg_temp under a name nobody can guess and dropped right after: the owner's
# code may alter the function it runs in, but never one the run calls later.
AS_OWNER_FUNCTION = """
CREATE FUNCTION pg_temp.{name}(command text, counting boolean) RETURNS bigint LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    IF counting THEN
        EXECUTE command INTO n;
    ELSE
        EXECUTE command;
    END IF;
    RETURN n;
END $$;
ALTER FUNCTION pg_temp.{name}(text, boolean) OWNER TO {owner};
"""
# What this session's pg_temp holds: the owner's code could leave a table, a view or a type there,
# which would come first in the search path of whoever uses this server connection next (behind
# PgBouncer, another client).
IN_MY_TEMP_SCHEMA = """
SELECT 'relation ' || c.relname FROM pg_catalog.pg_class c WHERE c.relnamespace = pg_catalog.pg_my_temp_schema()
UNION ALL
SELECT 'type ' || t.typname FROM pg_catalog.pg_type t WHERE t.typnamespace = pg_catalog.pg_my_temp_schema()
UNION ALL
SELECT 'function ' || f.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc f
WHERE f.pronamespace = pg_catalog.pg_my_temp_schema()
"""


class AsOwner:
    """Runs statements, and counts, as the ledger's owner: through AS_OWNER_FUNCTION when the login
    is a superuser (definer true), else as the session's current role (the login itself, or the
    owner after SET LOCAL ROLE)."""

    def __init__(self, cur, role, definer):
        self.cur, self.role, self.definer = cur, role, definer

    def run(self, statement, params=None):
        if params is not None:
            statement = self.cur.mogrify(statement, params).decode()
        self._call(statement, counting=False)

    def count(self, query):
        return self._call(query, counting=True)

    def _call(self, command, counting):
        if not self.definer:
            self.cur.execute(command)
            return self.cur.fetchone()[0] if counting else None
        name = sql.Identifier("jr_as_owner_" + uuid.uuid4().hex)
        self.cur.execute(sql.SQL(AS_OWNER_FUNCTION).format(name=name, owner=sql.Identifier(self.role)))
        self.cur.execute(sql.SQL("SELECT pg_temp.{}(%s, %s)").format(name), (command, counting))
        answer = self.cur.fetchone()[0]
        self.cur.execute(sql.SQL("DROP FUNCTION pg_temp.{}(text, boolean)").format(name))
        return answer


def temp_schema(cur):
    cur.execute(IN_MY_TEMP_SCHEMA)
    return {name for (name,) in cur.fetchall()}


@contextlib.contextmanager
def acting_as_owner(cur, owner, lend_create=True):
    """An AsOwner for the block. CREATE on public lent to the owner (for DDL) is taken back at its
    end, in the same transaction; anything the owner's code left in pg_temp fails the transaction."""
    if owner.role == owner.login:
        yield AsOwner(cur, owner.role, definer=False)
        return
    role = sql.Identifier(owner.role)
    lend_create = lend_create and owner.lend_create
    if lend_create:
        cur.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(role))
    if owner.login_is_superuser:
        before = temp_schema(cur)
        yield AsOwner(cur, owner.role, definer=True)
        left = sorted(temp_schema(cur) - before)
        if left:
            raise MigrationError(f"the owner's code left {', '.join(left)} in this session's pg_temp, where it would"
                                 " come first for whoever uses this server connection next; rolled back")
    else:
        # A member of the owner role: code acting as the owner could take back only this login's
        # own rights, which are no more than the owner's.
        cur.execute(sql.SQL("SET LOCAL ROLE {}").format(role))
        yield AsOwner(cur, owner.role, definer=False)
        cur.execute("SET LOCAL ROLE NONE")
    if lend_create:
        cur.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(role))


@contextlib.contextmanager
def locked_transaction(conn, wait_timeout, lock_timeout):
    """One transaction holding the migration lock, with lock_timeout set for it alone; commits
    when the block ends, rolls back when it raises."""
    with conn, conn.cursor() as cur:
        act_as_the_login(cur)
        pin_search_path(cur)
        cur.execute("SELECT set_config('lock_timeout', %s, true)", (wait_timeout,))
        try:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        except psycopg2.errors.LockNotAvailable as exc:
            raise MigrationError(
                f"another make migrate has held the migration lock for longer than JR_MIGRATE_WAIT ({wait_timeout});"
                " run it again when that one has finished, or raise JR_MIGRATE_WAIT") from exc
        cur.execute("SELECT set_config('lock_timeout', %s, true)", (lock_timeout,))
        yield cur


def applied_migrations(cur, owner):
    """The ledger as {version: (name, checksum)}, created empty (by the owner) when absent."""
    cur.execute("SELECT to_regclass('public.jr_schema_migrations') IS NULL")
    if cur.fetchone()[0]:
        with acting_as_owner(cur, owner) as as_owner:
            as_owner.run(LEDGER_DDL)
    cur.execute("SELECT version, name, checksum FROM public.jr_schema_migrations")
    return {version: (name, digest) for version, name, digest in cur.fetchall()}


def check_history(on_disk, applied):
    """Refuse a database whose applied migrations do not match this checkout's files."""
    disk = dict(on_disk)
    for version, (name, digest) in sorted(applied.items()):
        if version not in disk:
            raise MigrationError(
                f"the database has migration {name}, which this checkout does not have; "
                "update the checkout before migrating")
        if checksum(disk[version]) != digest:
            raise MigrationError(
                f"{disk[version].name} was changed after it was applied (checksum differs); "
                "applied migrations are immutable: restore the file and put the change in a new migration")


def not_valid_checks(cur):
    """{(table, constraint): (expression, the VALIDATE command)} of the ledger's NOT VALID CHECKs."""
    cur.execute(NOT_VALID_CHECKS)
    return {(table, name): (expr, validate) for table, name, expr, validate in cur.fetchall()}


def public_relations(cur):
    cur.execute(PUBLIC_RELATIONS)
    return {name for (name,) in cur.fetchall()}


def apply_migration(cur, owner, version, path):
    """Apply one migration and record it; return the line that says what it did, and the NOT VALID
    CHECKs it added as not_valid_checks gives them."""
    baseline = False
    if version == BASELINE_VERSION:
        cur.execute("SELECT bool_or(to_regclass(t) IS NOT NULL) FROM unnest(%s::text[]) t", (SEED_TABLES,))
        baseline = cur.fetchone()[0]
        relations_before = public_relations(cur)
    not_valid_before = not_valid_checks(cur)
    cur.execute("SET LOCAL client_min_messages = warning")  # until the transaction ends
    try:
        with acting_as_owner(cur, owner) as as_owner:
            as_owner.run(path.read_text())
            as_owner.run("INSERT INTO public.jr_schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                         (version, path.name, checksum(path)))
    except psycopg2.Error as exc:
        raise MigrationError(f"{path.name} failed and was rolled back: {describe(exc)}") from exc

    line = f"applied {path.name}"
    if baseline:
        line = f"{path.name}: the seed's tables were already here; recorded as the baseline"
        missing = sorted(public_relations(cur) - relations_before)
        if missing:
            line += f" (it created what was missing: {', '.join(missing)})"
    added = {key: value for key, value in not_valid_checks(cur).items() if key not in not_valid_before}
    return line, added


def breaking_rows(conn, owner, table, expr):
    """How many rows of public.table break a CHECK, counted as the owner. In a transaction of its
    own, after the migration's commit, so that the count does not prolong the migration's locks."""
    with conn, conn.cursor() as cur:
        act_as_the_login(cur)
        pin_search_path(cur)
        query = sql.SQL("SELECT count(*) FROM {} WHERE NOT ({})").format(sql.Identifier("public", table), sql.SQL(expr))
        with acting_as_owner(cur, owner, lend_create=False) as as_owner:
            return as_owner.count(query.as_string(cur))


def definition_files():
    return [path for folder in DEFINITION_DIRS for path in sorted((DB_DIR / folder).glob("*.sql"))]


# Each function and view file's object as the catalog gives it back (every function of the file's
# name; a view's query and options), as the server's major version and an MD5 ("17:9e10…"): NULL
# when it is missing. How the catalog prints an object may change with the major version.
IN_CATALOG = r"""
SELECT f.file,
       (pg_catalog.current_setting('server_version_num')::integer / 10000)::text || ':' ||
       CASE f.folder
       WHEN 'functions' THEN (
           SELECT pg_catalog.md5(pg_catalog.string_agg(pg_catalog.pg_get_functiondef(p.oid), ''
                                                       ORDER BY p.oid::pg_catalog.regprocedure::text))
           FROM pg_catalog.pg_proc p
           WHERE p.pronamespace = 'public'::pg_catalog.regnamespace AND p.proname = f.object)
       ELSE (
           SELECT pg_catalog.md5(pg_catalog.pg_get_viewdef(c.oid) || COALESCE(c.reloptions::text, ''))
           FROM pg_catalog.pg_class c
           WHERE c.relnamespace = 'public'::pg_catalog.regnamespace AND c.relname = f.object AND c.relkind = 'v')
       END
FROM ROWS FROM (pg_catalog.unnest(%(files)s::text[]), pg_catalog.unnest(%(objects)s::text[]),
                pg_catalog.unnest(%(folders)s::text[])) AS f(file, object, folder)
"""
APPLIED_DEFINITIONS = """
SELECT d.file, d.checksum, d.in_catalog,
       (SELECT pg_catalog.max(m.applied_at) FROM public.jr_schema_migrations m) > d.applied_at
FROM public.jr_schema_definitions d
"""
RECORD_DEFINITION = """
INSERT INTO public.jr_schema_definitions AS d (file, checksum, in_catalog) VALUES (%s, %s, %s)
ON CONFLICT (file) DO UPDATE
SET checksum = excluded.checksum, in_catalog = excluded.in_catalog, applied_at = pg_catalog.now(),
    applied_by = session_user
"""


def in_catalog(cur, files):
    """{file name: the MD5 of its object in the catalog, or None when it is missing}."""
    cur.execute(IN_CATALOG, {"files": [str(path.relative_to(DB_DIR)) for path in files],
                             "objects": [path.stem for path in files], "folders": [path.parent.name for path in files]})
    return dict(cur.fetchall())


def why_apply(path, recorded, now_in_catalog):
    """Why a function or view file must be applied again, or None: its file changed, its object is
    missing, a migration came after it (which may have changed what it relies on, and how the
    catalog prints it), the server's major version changed (so may that), or it was changed in
    the database since, which make migrate says aloud."""
    if recorded is None or recorded[0] != checksum(path):
        return "file"
    if now_in_catalog is None:
        return "missing"
    if recorded[2]:
        return "migration"
    if recorded[1].split(":")[0] != now_in_catalog.split(":")[0]:
        return "server upgraded"
    if recorded[1] != now_in_catalog:
        return "changed in the database"
    return None


def apply_definitions(cur, owner):
    """Apply the function and view files that need it (as the owner), then db/privileges.sql (as
    the login, which may create roles); return the names of the files applied and the lines to say."""
    files = definition_files()
    names = {path: str(path.relative_to(DB_DIR)) for path in files}
    cur.execute(APPLIED_DEFINITIONS)
    recorded = {file: (digest, fingerprint, migrated) for file, digest, fingerprint, migrated in cur.fetchall()}
    catalog = in_catalog(cur, files)
    reasons = {path: why_apply(path, recorded.get(names[path]), catalog[names[path]]) for path in files}
    applied = [path for path in files if reasons[path]]
    try:
        if applied:
            with acting_as_owner(cur, owner) as as_owner:
                for path in applied:
                    as_owner.run(path.read_text())
                catalog = in_catalog(cur, applied)
                for path in applied:
                    as_owner.run(RECORD_DEFINITION, (names[path], checksum(path), catalog[names[path]]))
        cur.execute((DB_DIR / "privileges.sql").read_text())
    except psycopg2.Error as exc:
        raise MigrationError(f"functions and views failed and were rolled back: {describe(exc)}") from exc
    warnings = [f"warning: {path.parent.name[:-1]} public.{path.stem} was changed in the database since make migrate"
                f" applied it (by whoever can act as {owner.role}); applied again from db/{names[path]}"
                for path in applied if reasons[path] == "changed in the database"]
    return [path.stem for path in applied], warnings


def migrate(conn):
    lock_timeout = os.environ.get("JR_LOCK_TIMEOUT", "5s")
    wait_timeout = os.environ.get("JR_MIGRATE_WAIT", "120s")
    on_disk = migration_files(DB_DIR / "migrations")

    reported = set()  # the NOT VALID CHECKs this run has already named
    applied_any = False
    while True:
        # One migration per transaction; the ledger is read again under the lock each time, so a
        # migration another run applied meanwhile is never applied twice.
        with locked_transaction(conn, wait_timeout, lock_timeout) as cur:
            owner = ledger_owner(cur)
            refuse_what_is_in_the_way(cur, owner)
            changes = take_charge(cur, owner)
            applied = applied_migrations(cur, owner)
            check_history(on_disk, applied)
            pending = [(version, path) for version, path in on_disk if version not in applied]
            if pending:
                line, added = apply_migration(cur, owner, *pending[0])
            else:
                definitions, warnings = apply_definitions(cur, owner)
                still_not_valid = not_valid_checks(cur)
        for change in changes:
            print(change)
        if not pending:
            break
        applied_any = True
        print(line)
        report_notices(conn)
        for (table, name), (expr, validate) in added.items():
            breaking = breaking_rows(conn, owner, table, expr)
            print(f"  {breaking} existing row(s) of {table} break {name} ({expr}); they are"
                  f" kept and new writes are checked. Fix them, then run: {validate}")
        reported |= set(added)

    if not applied_any:
        print(f"migrations: all {len(on_disk)} already applied")
    if owner.role != owner.login:
        print(f"owner: {owner.role}, not {owner.login}, owns the ledger's objects and ran their DDL")
    for warning in warnings:
        print(warning)
    if definitions:
        print("functions and views: applied " + ", ".join(definitions))
    else:
        print(f"functions and views: all {len(definition_files())} unchanged")
    report_notices(conn)
    for (table, name), (_, validate) in still_not_valid.items():
        if (table, name) not in reported:
            print(f"still NOT VALID: {name} on {table} (new writes are checked, existing rows are not);"
                  f" once no row breaks it, run: {validate}")


def describe(exc):
    """The error's severity, message, detail and hint; not its CONTEXT, which after EXECUTE would
    quote a whole migration or function file."""
    diag = exc.diag
    if diag.message_primary:
        parts = [f"{diag.severity or 'ERROR'}:  {diag.message_primary}"]
        parts += [f"{label}:  {value}" for label, value in (("DETAIL", diag.message_detail),
                                                             ("HINT", diag.message_hint)) if value]
        text = "\n".join(parts)
    else:
        text = (exc.pgerror or str(exc)).strip()
    if exc.pgcode == "55P03":
        text += (" (lock_timeout: another session holds a lock this migration needs;"
                 " retry later or raise JR_LOCK_TIMEOUT)")
    return text


def connect():
    params = {"application_name": "jr-steps migrate"}
    if "PGCONNECT_TIMEOUT" not in os.environ:
        params["connect_timeout"] = 10
    return psycopg2.connect("", **params)


def main():
    try:
        conn = connect()
    except psycopg2.Error as exc:
        print(f"migrate: cannot connect: {classify(exc).message}", file=sys.stderr)
        return 1
    try:
        migrate(conn)
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    except psycopg2.Error as exc:
        print(f"migrate: {describe(exc)}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
