#!/usr/bin/env python3
"""One line saying where a make target acts: host, port, database and login as libpq resolved
them, the server's version, and whether the login is a superuser. Exit status 1, with the reason,
when it cannot connect. The password is never printed."""

import os
import sys

import psycopg2

LABEL = os.environ.get("JR_WHERE_LABEL", "")


def describe_target(host, port, dbname, user):
    where = f"host={host or 'localhost'} port={port or 5432} dbname={dbname} user={user}"
    return f"{LABEL}: {where}" if LABEL else where


def main():
    env = os.environ
    try:
        conn = psycopg2.connect("", connect_timeout=int(env.get("PGCONNECT_TIMEOUT", 10)),
                                application_name="jr-steps make")
    except psycopg2.Error as exc:
        reason = " ".join(str(exc).split())
        if env.get("PGPASSWORD"):
            reason = reason.replace(env["PGPASSWORD"], "***")
        target = describe_target(env.get("PGHOST"), env.get("PGPORT"), env.get("PGDATABASE", env.get("PGUSER")),
                                 env.get("PGUSER"))
        if env.get("PGSERVICE"):
            target += f" service={env['PGSERVICE']}"
        print(f"where: {target}: cannot connect: {reason}", file=sys.stderr)
        return 1
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version'), current_setting('is_superuser') = 'on'")
            version, superuser = cur.fetchone()
        info = conn.info
        target = describe_target(info.host, info.port, info.dbname, info.user)
        print(f"where: {target}: PostgreSQL {version.split()[0]}, {'superuser' if superuser else 'not a superuser'}")
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
