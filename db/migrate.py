#!/usr/bin/env python3
"""Install or upgrade the step ledger in the database the libpq variables name (PGHOST, PGPORT,
PGUSER, PGDATABASE, PGPASSWORD or ~/.pgpass, PGSERVICE).

1. Applies the pending migrations db/migrations/NNNN_name.sql in order, each in one transaction
   together with its row in public.jr_schema_migrations. An applied migration whose file has
   changed since is refused, and so is a database that has migrations this checkout lacks.
2. Re-applies every db/functions/*.sql, then every db/views/*.sql, then db/privileges.sql, in one
   transaction.

A session advisory lock makes concurrent runs take turns; lock_timeout (JR_LOCK_TIMEOUT, default
5s) makes DDL fail clearly instead of queueing behind a long lock on a busy database.
Exit status: 0 when the schema is current, 1 with a message on stderr otherwise.
"""

import hashlib
import os
import re
import sys
from pathlib import Path

import psycopg2

DB_DIR = Path(__file__).resolve().parent
MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any fixed number unique to this project: pg_advisory_lock takes a bigint key.
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


def run_in_transaction(conn, sql, params=None):
    with conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def applied_migrations(conn):
    rows = run_in_transaction(conn, "SELECT version, name, checksum FROM public.jr_schema_migrations")
    return {version: (name, digest) for version, name, digest in rows}


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


def apply_migration(conn, version, path):
    with conn, conn.cursor() as cur:
        cur.execute(path.read_text())
        cur.execute(
            "INSERT INTO public.jr_schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
            (version, path.name, checksum(path)))


def apply_functions(conn):
    files = [*sorted((DB_DIR / "functions").glob("*.sql")), *sorted((DB_DIR / "views").glob("*.sql")),
             DB_DIR / "privileges.sql"]
    with conn, conn.cursor() as cur:
        for path in files:
            cur.execute(path.read_text())
    return files


def migrate(conn):
    lock_timeout = os.environ.get("JR_LOCK_TIMEOUT", "5s")
    wait_timeout = os.environ.get("JR_MIGRATE_WAIT", "120s")
    on_disk = migration_files(DB_DIR / "migrations")

    run_in_transaction(conn, "SELECT set_config('lock_timeout', %s, false)", (wait_timeout,))
    run_in_transaction(conn, "SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
    try:
        run_in_transaction(conn, "SELECT set_config('lock_timeout', %s, false)", (lock_timeout,))
        run_in_transaction(conn, LEDGER_DDL)
        del conn.notices[:]
        applied = applied_migrations(conn)
        check_history(on_disk, applied)

        pending = [(version, path) for version, path in on_disk if version not in applied]
        for version, path in pending:
            try:
                apply_migration(conn, version, path)
            except psycopg2.Error as exc:
                raise MigrationError(f"{path.name} failed and was rolled back: {describe(exc)}") from exc
            print(f"applied {path.name}")
            report_notices(conn)
        if not pending:
            print(f"migrations: all {len(on_disk)} already applied")

        try:
            files = apply_functions(conn)
        except psycopg2.Error as exc:
            raise MigrationError(f"functions and views failed and were rolled back: {describe(exc)}") from exc
        print("functions, views and privileges: re-applied " + ", ".join(path.stem for path in files))
        report_notices(conn)
    finally:
        if not conn.closed:
            conn.rollback()
            run_in_transaction(conn, "SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))


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
