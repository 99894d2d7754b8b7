"""A real PgBouncer for the tests, in front of a test cluster: Debian's package (installed by
`make setup`), its default settings but for what a test must choose (a loopback port, the
transaction pool mode bluefin runs, password authentication, files in a folder of its own).
No `ignore_startup_parameters`: like bluefin's, it refuses any startup parameter it does not know.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
OS_USER = "postgres"  # pgbouncer refuses to run as root


class PgBouncer:
    """127.0.0.1:port -> every database of cluster, pool_mode = transaction.

    users: {login: password}; each login authenticates to PgBouncer with SCRAM, and PgBouncer
    reaches the cluster over its Unix socket (trusted there) as the same login."""

    def __init__(self, cluster, users, pool_mode="transaction", **settings):
        self.cluster = cluster
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="jr-bouncer-"))
        self.users = dict(users)
        self.settings = {
            "listen_addr": "127.0.0.1", "listen_port": self.port, "unix_socket_dir": "",
            "auth_type": "scram-sha-256", "auth_file": self.root / "userlist.txt",
            "pool_mode": pool_mode, "logfile": self.root / "pgbouncer.log", "pidfile": self.root / "pgbouncer.pid",
            **settings}
        self.process = None

    def start(self):
        userlist = "".join(f'"{user}" "{password}"\n' for user, password in self.users.items())
        (self.root / "userlist.txt").write_text(userlist)
        ini = [f"[databases]\n* = host={self.cluster.host} port={self.cluster.port}\n", "[pgbouncer]\n"]
        ini += [f"{key} = {value}\n" for key, value in self.settings.items()]
        (self.root / "pgbouncer.ini").write_text("".join(ini))
        os.chmod(self.root, 0o700)
        for path in [self.root, *self.root.iterdir()]:
            os.chmod(path, 0o700 if path.is_dir() else 0o600)
        command = [PGBOUNCER, str(self.root / "pgbouncer.ini")]
        if os.geteuid() == 0:
            shutil.chown(self.root, OS_USER)
            for path in self.root.iterdir():
                shutil.chown(path, OS_USER)
            command = ["runuser", "-u", OS_USER, "--", *command]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd="/")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited {self.process.returncode}: {self.log()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen on {self.port}: {self.log()[-2000:]}")

    def log(self):
        try:
            return (self.root / "pgbouncer.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def config(self, user, dbname):
        """The executor's db_config through PgBouncer."""
        return {"host": "127.0.0.1", "port": self.port, "user": user, "password": self.users[user], "dbname": dbname}

    def dsn(self, user, dbname):
        return " ".join(f"{k}={v}" for k, v in self.config(user, dbname).items() if k != "password")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
