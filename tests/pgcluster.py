"""Throwaway PostgreSQL clusters for the tests, started through scripts/pgcluster.

Every test talks to a cluster of its own making, never to the target database, so pytest is safe
whatever PGHOST points at.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parent.parent
PGCLUSTER = REPO / "scripts" / "pgcluster"
MIGRATE = REPO / "db" / "migrate.py"
BINDIR = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))[-1])
LIBPQ_VARS = ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE", "PGSERVICEFILE",
              "PGPASSFILE", "PGOPTIONS", "PGCONNECT_TIMEOUT", "PGSSLMODE", "PGAPPNAME")


class Cluster:
    """A private cluster in a fresh folder under /tmp (short, so its socket path fits)."""

    def __init__(self, port=5432, listen="", root=None, bindir=None):
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="jr-test-"))
        self.port = port
        self.listen = listen
        self.bindir = Path(bindir) if bindir else BINDIR
        self.host = None
        self.data = None

    def _run(self, *args):
        env = dict(os.environ, JR_PG_PORT=str(self.port), JR_PG_LISTEN=self.listen, JR_PG_BINDIR=str(self.bindir))
        return subprocess.run([str(PGCLUSTER), *args], env=env, check=True, capture_output=True, text=True).stdout

    def start(self):
        self._run("start", str(self.root))
        env = dict(line.split("=", 1) for line in self._run("env", str(self.root)).split())
        self.host, self.data = env["PGHOST"], Path(env["PGDATA"])
        return self

    def stop(self):
        self._run("stop", str(self.root))

    def destroy(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def env(self, dbname="postgres", user="postgres"):
        """os.environ with the libpq variables replaced by this cluster's."""
        env = {k: v for k, v in os.environ.items() if k not in LIBPQ_VARS}
        env.update(PGHOST=self.host, PGPORT=str(self.port), PGUSER=user, PGDATABASE=dbname)
        return env

    def connect(self, dbname="postgres", user="postgres", **kwargs):
        return psycopg2.connect(host=self.host, port=self.port, user=user, dbname=dbname, **kwargs)

    def admin(self, sql, params=None, dbname="postgres", user="postgres"):
        """Run one statement in autocommit, as the superuser unless user says otherwise; return its
        rows if it has any."""
        conn = self.connect(dbname, user)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def create_database(self, owner="postgres"):
        name = "t_" + uuid.uuid4().hex[:12]
        self.admin(f'CREATE DATABASE {name} OWNER "{owner}"')
        return name

    def migrate(self, dbname, user="postgres", db_dir=None, **env):
        """Run db/migrate.py (or a copy of it under db_dir) against dbname; return the finished process."""
        script = MIGRATE if db_dir is None else Path(db_dir) / "migrate.py"
        return subprocess.run([sys.executable, str(script)], env={**self.env(dbname, user), **env},
                              capture_output=True, text=True, timeout=120)

    def psql_file(self, dbname, path, user="postgres"):
        subprocess.run([str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path)],
                       env=self.env(dbname, user), check=True, capture_output=True, text=True)

    def dump(self, dbname, *options):
        """pg_dump's text, less the random \\restrict keys that newer versions add to every dump."""
        text = subprocess.run([str(self.bindir / "pg_dump"), "--no-owner", *options, dbname],
                              env=self.env(dbname), check=True, capture_output=True, text=True).stdout
        return "".join(line for line in text.splitlines(keepends=True)
                       if not line.startswith(("\\restrict ", "\\unrestrict ")))


def run_make(*args, timeout=120, **env):
    """make ARGS in the checkout, with none of the caller's libpq variables, make's own recursion
    variables or CONFIRM leaking in; env adds variables. Returns the finished process."""
    clean = {k: v for k, v in os.environ.items() if k not in (*LIBPQ_VARS, "MAKEFLAGS", "MAKELEVEL", "CONFIRM")}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, env={**clean, **env},
                          capture_output=True, text=True, timeout=timeout)
