#!/usr/bin/env python3
"""One line saying where a make target acts: host, port, database and login as libpq resolved
them, the server's version, and whether the login is a superuser. Exit status 1, with the reason,
when it cannot connect. The password is never printed."""

import os
import sys

import psycopg2
from jr_step_rewards.failures import classify, login_and_database, redact

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
        login, dbname = login_and_database()
        if env.get("PGSERVICE") and not env.get("PGHOST"):  # host and port are the service file's
            target = f"service={env['PGSERVICE']} dbname={dbname} user={login}"
        else:
            target = describe_target(env.get("PGHOST"), env.get("PGPORT"), dbname, login)
        reason = redact(classify(exc, login, dbname).message, [env.get("PGPASSWORD")])
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
