"""scripts/setup.sh: a remote target gets a client's tools only, and a user who is not root is told
in one line what to install."""

import contextlib
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


@contextlib.contextmanager
def open_folder():
    """A folder anyone can read, holding a copy of scripts/setup.sh: a checkout under /root is
    closed to the user the tests act as."""
    folder = Path(tempfile.mkdtemp(prefix="jr-setup-"))
    os.chmod(folder, 0o755)
    (folder / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "setup.sh", folder / "scripts")
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def setup_sh(folder, mode, *, user=None, **env):
    command = [str(folder / "scripts" / "setup.sh"), mode]
    if user:
        command = ["/usr/sbin/runuser", "-u", user, "--", *command]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_without_root_missing_client_packages_are_named_in_one_line():
    with open_folder() as folder:
        # A PATH with every command of this machine but psql and pg_prove.
        (folder / "bin").mkdir()
        for tool in Path("/usr/bin").iterdir():
            if tool.name not in ("psql", "pg_prove"):
                (folder / "bin" / tool.name).symlink_to(tool)
        result = setup_sh(folder, "client", user="nobody", PATH=str(folder / "bin"), HOME="/nonexistent")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "setup: missing Debian packages: postgresql-client libtap-parser-sourcehandler-pgtap-perl; "
        "install them with: sudo apt-get install postgresql-client libtap-parser-sourcehandler-pgtap-perl"]


def pgtap_script(*, user=None, **env):
    with open_folder() as folder:
        return setup_sh(folder, "pgtap-script", user=user, **{**os.environ, **env})


@pytest.mark.skipif(os.geteuid() != 0, reason="a fresh download as root")
def test_pgtaps_script_is_taken_out_of_debians_package_when_no_copy_is_installed():
    cache = Path(tempfile.mkdtemp(prefix="jr-pgtap-cache-"))
    try:
        result = pgtap_script(JR_PGTAP_SYSTEM="/nonexistent", JR_PGTAP_CACHE=str(cache))
        assert result.returncode == 0, result.stderr
        path = Path(result.stdout.strip())
        assert path.is_relative_to(cache) and path.name == "pgtap.sql"
        assert "CREATE OR REPLACE FUNCTION plan" in path.read_text()
        assert "taken out of postgresql-" in result.stderr and "(nothing installed)" in result.stderr
        again = pgtap_script(JR_PGTAP_SYSTEM="/nonexistent", JR_PGTAP_CACHE=str(cache))
        assert (again.returncode, again.stdout, again.stderr) == (0, result.stdout, ""), "kept: fetched once"
    finally:
        shutil.rmtree(cache)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_without_root_or_apt_lists_the_missing_pgtap_script_is_one_line(tmp_path):
    lists = Path(tempfile.mkdtemp(prefix="jr-empty-lists-"))
    (lists / "partial").mkdir()
    config = lists / "apt.conf"
    # No lists, no cache, and no installed packages either: apt knows no package at all.
    (lists / "status").touch()
    config.write_text(f'Dir::State::Lists "{lists}";\nDir::Cache "{lists}";\nDir::State::status "{lists}/status";\n')
    os.chmod(lists, 0o755)
    for path in (config, lists / "status"):
        os.chmod(path, 0o644)
    try:
        result = pgtap_script(user="nobody", JR_PGTAP_SYSTEM="/nonexistent", JR_PGTAP_CACHE="/nonexistent",
                              APT_CONFIG=str(config))
    finally:
        shutil.rmtree(lists)
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["setup: no pgTAP package in the apt lists; run 'sudo apt-get update' "
                                          "and try again"]


def test_a_postgresql_cache_others_may_write_to_is_refused():
    # Root runs the servers found there, so a cache another user could plant them in is never used.
    cache = Path(tempfile.mkdtemp(prefix="jr-pg-cache-"))
    os.chmod(cache, 0o777)
    try:
        result = subprocess.run([str(REPO / "scripts" / "pg-binaries"), "17"], capture_output=True, text=True,
                                env={**os.environ, "JR_PG_CACHE": str(cache)}, timeout=60)
    finally:
        shutil.rmtree(cache)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"pg-binaries: {cache} is not yours alone (owner or write bits); "
                                     "remove it or set JR_PG_CACHE")
