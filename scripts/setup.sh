#!/usr/bin/env bash
# Installs what the project needs, and only what is missing. Safe to run any number of times.
#
#   setup.sh [embedded]   everything the embedded database and the test suite need: from apt, a
#                         PostgreSQL server with pgTAP and plpgsql_check for its version, pg_prove,
#                         PgBouncer and python3-venv; then the venv (.venv).
#   setup.sh client       what acting on a remote server needs, nothing of a server: psql, pg_prove,
#                         python3-venv and the venv.
#   setup.sh pgtap-script prints the path of pgTAP's plain SQL script, for make pgtap on a server
#                         without the extension: an installed copy, else one taken out of Debian's
#                         package into .cache/pgtap (not installed: it would pull in a server).
#
# Without root, missing Debian packages are named in one line, with the command that installs them.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-embedded}
venv=${JR_VENV:-.venv}
python=${PYTHON:-python3}
PGTAP_CACHE=${JR_PGTAP_CACHE:-.cache/pgtap}
PGTAP_SYSTEM=${JR_PGTAP_SYSTEM:-/usr/share/postgresql}

missing_debs() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || echo "$pkg"
    done
}

apt_updated=
apt_refresh() {
    # The package lists are absent on a fresh machine; refresh them once per run.
    [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
}

apt_install() {
    [ $# -gt 0 ] || return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing Debian packages: $*; install them with: sudo apt-get install $*" >&2
        exit 1
    fi
    echo "setup: installing $*"
    apt_refresh
    # A package's own service (Debian's postgresql and pgbouncer start one) is not started: the
    # project starts the servers it needs, on a socket or loopback of its own.
    local policy=/usr/sbin/policy-rc.d ours=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && ours=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    local log
    log=$(mktemp)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >"$log" 2>&1 \
        || { tail -n 20 "$log" >&2; rm -f "$log"; exit 1; }
    rm -f "$log"
    [ -z "$ours" ] || { rm -f "$policy"; trap - EXIT; }
}

# The newest PostgreSQL server major version apt installed, or nothing.
installed_server_major() {
    local newest
    newest=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n 1) || true
    [ -z "$newest" ] || basename "$(dirname "$(dirname "$newest")")"
}

setup_embedded() {
    local major
    major=$(installed_server_major)
    if [ -z "$major" ]; then
        # shellcheck disable=SC2046
        apt_install $(missing_debs postgresql)
        major=$(installed_server_major)
    fi
    [ -n "$major" ] || { echo "setup: no PostgreSQL server found after installing 'postgresql'" >&2; exit 1; }
    # shellcheck disable=SC2046
    apt_install $(missing_debs "postgresql-$major-pgtap" "postgresql-$major-plpgsql-check" \
        libtap-parser-sourcehandler-pgtap-perl pgbouncer ca-certificates)
    echo "setup: embedded PostgreSQL $major with pgTAP and plpgsql_check; pg_prove; PgBouncer"
}

pgtap_script() {
    ls "$PGTAP_SYSTEM"/*/extension/pgtap.sql "$PGTAP_CACHE"/usr/share/postgresql/*/extension/pgtap.sql \
        2>/dev/null | sort -V | tail -n 1 || true
}

pgtap_package() {
    apt-cache pkgnames postgresql- 2>/dev/null | grep -E '^postgresql-[0-9]+-pgtap$' | sort -V | tail -n 1 || true
}

fetch_pgtap_script() {
    [ -z "$(pgtap_script)" ] || return 0
    local deb package
    command -v apt-get >/dev/null || { echo "setup: pgTAP's SQL script is needed, and there is no apt-get to fetch it" >&2; exit 1; }
    package=$(pgtap_package)
    if [ -z "$package" ]; then
        [ "$(id -u)" -eq 0 ] || { echo "setup: no pgTAP package in the apt lists; run 'sudo apt-get update' and try again" >&2; exit 1; }
        apt_refresh
        package=$(pgtap_package)
        [ -n "$package" ] || { echo "setup: apt knows no postgresql-NN-pgtap package" >&2; exit 1; }
    fi
    mkdir -p "$PGTAP_CACHE"
    (cd "$PGTAP_CACHE" && apt-get download -qq "$package" >/dev/null 2>&1) \
        || { echo "setup: could not download $package" >&2; exit 1; }
    deb=$(ls "$PGTAP_CACHE"/*.deb | tail -n 1)
    dpkg-deb -x "$deb" "$PGTAP_CACHE"
    rm -f "$deb"
    echo "setup: pgTAP's SQL script taken out of $package into $PGTAP_CACHE (nothing installed)" >&2
}

setup_client() {
    local debs=()
    command -v psql >/dev/null || debs+=(postgresql-client)
    command -v pg_prove >/dev/null || debs+=(libtap-parser-sourcehandler-pgtap-perl)
    # Checked by file, not by dpkg: PyPI needs the bundle, not the package.
    [ -e /etc/ssl/certs/ca-certificates.crt ] || debs+=(ca-certificates)
    apt_install "${debs[@]}"
}

setup_venv() {
    if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
        # shellcheck disable=SC2046
        apt_install $(missing_debs python3-venv)
    fi
    # The venv is rebuilt only when the package's metadata is newer than the last install.
    local stamp="$venv/.installed"
    if [ ! -f "$stamp" ] || [ python_client/pyproject.toml -nt "$stamp" ]; then
        [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -e 'python_client[test]'
        touch "$stamp"
    fi
}

case "$mode" in
    embedded) setup_embedded ;;
    client) setup_client ;;
    venv) ;;
    pgtap-script) fetch_pgtap_script; pgtap_script; exit 0 ;;
    *) echo "usage: setup.sh [embedded|client|venv|pgtap-script]" >&2; exit 2 ;;
esac
setup_venv
