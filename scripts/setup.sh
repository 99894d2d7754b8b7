#!/usr/bin/env bash
# Installs what the project needs, and only what is missing:
#   - from apt: a PostgreSQL server, pgTAP, pg_prove and plpgsql_check for that server's version;
#   - a virtualenv (.venv) with the Python package and its test tools.
# Safe to run any number of times; a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${JR_VENV:-.venv}
python=${PYTHON:-python3}

missing_debs() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || echo "$pkg"
    done
}

apt_install() {
    [ $# -gt 0 ] || return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing Debian packages: $*" >&2
        echo "setup: run 'sudo apt-get install $*' (or 'sudo make setup') and try again" >&2
        exit 1
    fi
    echo "setup: installing $*"
    # The package lists may be absent on a fresh machine; refresh them once per run.
    if [ -z "${apt_updated:-}" ]; then apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The newest PostgreSQL major version installed, or nothing.
installed_pg_major() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n 1) || true
    [ -n "$dir" ] && basename "$(dirname "$(dirname "$dir")")"
}

major=$(installed_pg_major)
if [ -z "$major" ]; then
    # shellcheck disable=SC2046
    apt_install $(missing_debs postgresql)
    major=$(installed_pg_major)
fi
[ -n "$major" ] || { echo "setup: no PostgreSQL server found after installing 'postgresql'" >&2; exit 1; }

# shellcheck disable=SC2046
apt_install $(missing_debs "postgresql-$major" "postgresql-$major-pgtap" "postgresql-$major-plpgsql-check" \
    libtap-parser-sourcehandler-pgtap-perl pgbouncer)

if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
    # shellcheck disable=SC2046
    apt_install $(missing_debs python3-venv)
fi

# The venv is rebuilt only when the package's metadata is newer than the last install.
stamp="$venv/.installed"
if [ ! -f "$stamp" ] || [ python_client/pyproject.toml -nt "$stamp" ]; then
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e 'python_client[test]'
    touch "$stamp"
fi
echo "setup: PostgreSQL $major with pgTAP, pg_prove and plpgsql_check; Python venv in $venv"
