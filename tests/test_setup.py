"""scripts/setup.sh: a remote target gets a client's tools only, and a user who is not root is told
in one line what to install."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from pgcluster import REPO, run_make


def test_a_remote_target_sets_up_a_client_not_a_server():
    recipe = run_make("-n", "migrate", PGHOST="bluefin.example", PGUSER="claude").stdout
    assert "scripts/setup.sh client" in recipe
    assert "scripts/setup.sh embedded" not in recipe
    assert "scripts/setup.sh embedded" in run_make("-n", "migrate").stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_without_root_missing_client_packages_are_named_in_one_line():
    # A PATH with every command of this machine but psql and pg_prove, in a folder anyone can read.
    bin_dir = Path(tempfile.mkdtemp(prefix="jr-path-"))
    os.chmod(bin_dir, 0o755)
    for tool in Path("/usr/bin").iterdir():
        if tool.name not in ("psql", "pg_prove"):
            (bin_dir / tool.name).symlink_to(tool)
    # The script too: a checkout under /root is closed to nobody.
    (bin_dir / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "setup.sh", bin_dir / "scripts")
    try:
        result = run_as_nobody(bin_dir)
    finally:
        shutil.rmtree(bin_dir)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "setup: missing Debian packages: postgresql-client libtap-parser-sourcehandler-pgtap-perl; "
        "install them with: sudo apt-get install postgresql-client libtap-parser-sourcehandler-pgtap-perl"]


def run_as_nobody(bin_dir):
    return subprocess.run(["/usr/sbin/runuser", "-u", "nobody", "--", str(bin_dir / "scripts" / "setup.sh"), "client"],
                          env={"PATH": str(bin_dir), "HOME": "/nonexistent"}, capture_output=True, text=True,
                          timeout=60)
