#!/usr/bin/env python3
"""Install or upgrade the step ledger in the database the libpq variables name (PGHOST, PGPORT,
PGUSER, PGDATABASE, PGPASSWORD or ~/.pgpass, PGSERVICE).

1. Applies the pending migrations db/migrations/NNNN_name.sql in order, each in one transaction
   together with its row in public.jr_schema_migrations. An applied migration whose file has
   changed since is refused, and so is a database that has migrations this checkout lacks. Where
   the seed's SQL was run by hand, 0001 is recorded as the baseline and said to be one.
2. Re-applies every db/functions/*.sql, then every db/views/*.sql, then db/privileges.sql, in one
   transaction, and names the ledger's CHECKs still NOT VALID.

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
import hashlib
import os
import re
import sys
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


def pin_search_path(cur):
    """For the rest of the transaction, names resolve in pg_catalog (and pg_temp, last) only: an
    operator, function or type someone planted in public cannot bind into a CHECK, a view or a
    default that the migration creates, nor run with the migrator's rights."""
    cur.execute("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true)")


@contextlib.contextmanager
def locked_transaction(conn, wait_timeout, lock_timeout):
    """One transaction holding the migration lock, with lock_timeout set for it alone; commits
    when the block ends, rolls back when it raises."""
    with conn, conn.cursor() as cur:
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


def applied_migrations(cur):
    """The ledger as {version: (name, checksum)}, created empty when absent."""
    cur.execute("SELECT to_regclass('public.jr_schema_migrations') IS NULL")
    if cur.fetchone()[0]:
        cur.execute(LEDGER_DDL)
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


def apply_migration(cur, version, path):
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
        cur.execute(path.read_text())
        cur.execute("INSERT INTO public.jr_schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
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


def breaking_rows(conn, table, expr):
    """How many rows of public.table break a CHECK. Counted in a transaction of its own, after the
    migration's commit, so that the count does not prolong the migration's locks."""
    with conn, conn.cursor() as cur:
        pin_search_path(cur)
        cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE NOT ({})").format(
            sql.Identifier("public", table), sql.SQL(expr)))
        return cur.fetchone()[0]


def apply_functions(cur):
    files = [*sorted((DB_DIR / "functions").glob("*.sql")), *sorted((DB_DIR / "views").glob("*.sql")),
             DB_DIR / "privileges.sql"]
    try:
        for path in files:
            cur.execute(path.read_text())
    except psycopg2.Error as exc:
        raise MigrationError(f"functions and views failed and were rolled back: {describe(exc)}") from exc
    return files


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
            applied = applied_migrations(cur)
            check_history(on_disk, applied)
            pending = [(version, path) for version, path in on_disk if version not in applied]
            if pending:
                line, added = apply_migration(cur, *pending[0])
            else:
                files = apply_functions(cur)
                still_not_valid = not_valid_checks(cur)
        if not pending:
            break
        applied_any = True
        print(line)
        report_notices(conn)
        for (table, name), (expr, validate) in added.items():
            print(f"  {breaking_rows(conn, table, expr)} existing row(s) of {table} break {name} ({expr}); they are"
                  f" kept and new writes are checked. Fix them, then run: {validate}")
        reported |= set(added)

    if not applied_any:
        print(f"migrations: all {len(on_disk)} already applied")
    print("functions, views and privileges: re-applied " + ", ".join(path.stem for path in files))
    report_notices(conn)
    for (table, name), (_, validate) in still_not_valid.items():
        if (table, name) not in reported:
            print(f"still NOT VALID: {name} on {table} (new writes are checked, existing rows are not);"
                  f" once no row breaks it, run: {validate}")


def describe(exc):
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
