#!/usr/bin/env python3
"""Install or upgrade the step ledger in the database the libpq variables name (PGHOST, PGPORT,
PGUSER, PGDATABASE, PGPASSWORD or ~/.pgpass, PGSERVICE).

1. Applies the pending migrations db/migrations/NNNN_name.sql in order, each in one transaction
   together with its row in public.jr_schema_migrations. An applied migration whose file has
   changed since is refused, and so is a database that has migrations this checkout lacks.
2. Re-applies every db/functions/*.sql, then every db/views/*.sql, then db/privileges.sql, in one
   transaction.

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

DB_DIR = Path(__file__).resolve().parent
MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any fixed number unique to this project: pg_advisory_xact_lock takes a bigint key.
ADVISORY_LOCK_KEY = 7_324_001_202_601
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
        print("  " + notice.strip().replace("NOTICE:  ", "notice: "))
    del conn.notices[:]


@contextlib.contextmanager
def locked_transaction(conn, wait_timeout, lock_timeout):
    """One transaction holding the migration lock, with lock_timeout set for it alone; commits
    when the block ends, rolls back when it raises."""
    with conn, conn.cursor() as cur:
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


def apply_migration(cur, version, path):
    try:
        cur.execute(path.read_text())
        cur.execute("INSERT INTO public.jr_schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (version, path.name, checksum(path)))
    except psycopg2.Error as exc:
        raise MigrationError(f"{path.name} failed and was rolled back: {describe(exc)}") from exc


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

    applied_any = False
    while True:
        # One migration per transaction; the ledger is read again under the lock each time, so a
        # migration another run applied meanwhile is never applied twice.
        with locked_transaction(conn, wait_timeout, lock_timeout) as cur:
            applied = applied_migrations(cur)
            check_history(on_disk, applied)
            pending = [(version, path) for version, path in on_disk if version not in applied]
            if pending:
                apply_migration(cur, *pending[0])
            else:
                files = apply_functions(cur)
        if not pending:
            break
        applied_any = True
        print(f"applied {pending[0][1].name}")
        report_notices(conn)

    if not applied_any:
        print(f"migrations: all {len(on_disk)} already applied")
    print("functions, views and privileges: re-applied " + ", ".join(path.stem for path in files))
    report_notices(conn)


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
        print(f"migrate: cannot connect: {str(exc).strip()}", file=sys.stderr)
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
