#!/usr/bin/env bash
# make fresh-machine-check: proves the README's two commands on a machine that has nothing yet.
# Builds a Debian 12 (bookworm) minbase root with debootstrap, adds only git and make, clones this
# checkout's HEAD into it (under /root, which the postgres user cannot enter), and runs
# `make demo`, then `make test` there, as root. Needs root, and a few minutes.
#
# Environment: JR_FRESH_ROOT (default /var/tmp/jr-fresh-machine; made anew each run),
# JR_FRESH_MIRROR (default http://deb.debian.org/debian). This machine's CA bundle and pip's
# `cert` setting are copied in, so PyPI answers there as it does here.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine-check: needs root (debootstrap, chroot, mount)" >&2; exit 2; }

root=${JR_FRESH_ROOT:-/var/tmp/jr-fresh-machine}
mirror=${JR_FRESH_MIRROR:-http://deb.debian.org/debian}
repo=$(pwd)

command -v debootstrap >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

unmount_all() {
    local m
    # Nothing started inside may outlive the check: the embedded cluster is stopped first.
    if [ -d "$root/root/jr-step-rewards/scripts" ] && mountpoint -q "$root/proc"; then
        chroot "$root" bash -c 'cd /root/jr-step-rewards && scripts/pgcluster stop .pg' >/dev/null 2>&1 || true
    fi
    for m in dev/shm dev/pts dev proc; do
        mountpoint -q "$root/$m" && umount -l "$root/$m"
    done
    return 0
}
trap unmount_all EXIT

unmount_all
rm -rf --one-file-system "$root"
echo "fresh-machine-check: debootstrap bookworm (minbase) into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 \
    || { tail -n 20 "$root.debootstrap.log" >&2; exit 1; }

mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs tmpfs "$root/dev/shm"
cp /etc/resolv.conf "$root/etc/resolv.conf"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$root/etc/ssl"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/host-ca-bundle.crt"
    printf '[global]\ncert = /etc/ssl/host-ca-bundle.crt\n' >"$root/etc/pip.conf"
fi

in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 TERM=dumb bash -c "$1"; }

echo "fresh-machine-check: adding git and make, nothing else"
in_root 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends git make >/dev/null'
in_root 'for tool in psql postgres python3 pg_prove pgbouncer; do ! command -v $tool >/dev/null || { echo "not fresh: $tool is there"; exit 1; }; done'

git clone -q "$repo" "$root/root/jr-step-rewards"
echo "fresh-machine-check: make demo"
in_root 'cd /root/jr-step-rewards && make demo'
echo "fresh-machine-check: make test"
in_root 'cd /root/jr-step-rewards && make test'
echo "fresh-machine-check: make demo and make test passed on a fresh Debian 12 with only git and make added"
