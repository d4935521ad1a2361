#!/usr/bin/env bash
# Checks the install steps of `make test` on a fresh Debian 12 where none of
# their packages is installed: `make deps browser-deps` and the setup part of
# scripts/autobahn.sh (AUTOBAHN_SETUP_ONLY=1), once as root (no sudo on the
# machine) and once as a user with sudo, each in its own chroot.
#
#   sudo scripts/check-install.sh          (or: make check-install)
#
# A minimal bookworm (debootstrap --variant=minbase, plus make) is made once in
# target/check-install/base and reused; each run copies it, adds what the
# machine itself comes with (the host's Node.js and npm), copies Makefile,
# scripts/ and tests/browser/package*.json into /src, and runs the steps there,
# then checks that nc (OpenBSD), ss, chromium, playwright-core and wstest work,
# and that a second `make deps browser-deps` installs nothing.
#
# Needs root (debootstrap, chroot, mounts) and Debian's package registry; takes
# a few minutes and downloads Chromium twice. Not part of `make test`.
#
# Environment: CHECK_INSTALL_MIRROR (default http://deb.debian.org/debian),
# CHECK_INSTALL_AS (default "root user": which runs to do), CHECK_INSTALL_KEEP=1
# keeps the chroots in target/check-install/ afterwards.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DIR=$ROOT/target/check-install
BASE=$DIR/base
MIRROR=${CHECK_INSTALL_MIRROR:-http://deb.debian.org/debian}
AS=${CHECK_INSTALL_AS:-root user}
log() { echo "check-install: $*" >&2; }
die() { log "$*"; exit 2; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mounts): sudo $0"
command -v node >/dev/null && command -v npm >/dev/null || die "needs the host's node and npm (copied into the chroot)"
scripts/install-deps.sh debootstrap=debootstrap

if [ ! -e "$BASE/.done" ]; then
    log "debootstrap bookworm (minbase) into $BASE"
    rm -rf "$BASE"
    mkdir -p "$DIR"
    debootstrap --variant=minbase --include=make bookworm "$BASE" "$MIRROR" >"$DIR/debootstrap.log" 2>&1 \
        || { tail -n 20 "$DIR/debootstrap.log" >&2; die "debootstrap failed (log: $DIR/debootstrap.log)"; }
    touch "$BASE/.done"
fi

# Runs "$@" in chroot $1 with /proc, /dev and /dev/shm mounted in a private
# mount namespace (unmounted when it ends).
in_chroot() {
    local root=$1; shift
    unshare -m --propagation private bash -c '
        set -e; r=$1; shift
        mount -t proc proc "$r/proc"
        mount --rbind /dev "$r/dev"
        mount -t tmpfs tmpfs "$r/dev/shm"
        exec chroot "$r" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root TERM=dumb LANG=C.UTF-8 "$@"' _ "$root" "$@"
}

run_one() {
    local who=$1 r=$DIR/$1 cmd
    log "$who: preparing $r"
    rm -rf "$r"
    cp -a "$BASE" "$r"
    rm -f "$r/.done"
    # The machine's own sources (updates, security) and name resolution.
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        rm -f "$r/etc/apt/sources.list"
        cp /etc/apt/sources.list.d/debian.sources "$r/etc/apt/sources.list.d/"
    fi
    cp -L /etc/resolv.conf "$r/etc/resolv.conf"
    cp -L /etc/hosts "$r/etc/hosts"
    # The machine's TLS trust and registry client settings (npm's cafile,
    # pip's cert), where it has them: the registries may be reached through them.
    local f
    for f in /usr/local/share/ca-certificates /etc/ssl/certs/ca-certificates.crt \
             /etc/npmrc /usr/etc/npmrc /etc/pip.conf; do
        [ -e "$f" ] || continue
        mkdir -p "$r$(dirname "$f")"
        cp -aL "$f" "$r$(dirname "$f")/"
    done
    printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"; chmod +x "$r/usr/sbin/policy-rc.d"
    # What the machine comes with: Node.js and npm.
    cp -L "$(command -v node)" "$r/usr/bin/node"
    mkdir -p "$r/usr/lib/node_modules"
    cp -a "$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")" "$r/usr/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/bin/npm"
    # The project's install steps.
    mkdir -p "$r/src/tests/browser"
    cp -a Makefile scripts "$r/src/"
    cp -a tests/browser/package.json tests/browser/package-lock.json "$r/src/tests/browser/"

    local steps='cd /src && make deps browser-deps && AUTOBAHN_SETUP_ONLY=1 scripts/autobahn.sh'
    if [ "$who" = root ]; then
        in_chroot "$r" bash -c '! command -v sudo' >/dev/null || die "sudo in the base chroot"
        cmd=(bash -c "$steps")
    else
        log "$who: installing sudo, adding user tester (NOPASSWD sudo)"
        in_chroot "$r" bash -c 'DEBIAN_FRONTEND=noninteractive apt-get -qq -y install sudo >/dev/null \
            && useradd -m -s /bin/bash tester \
            && echo "tester ALL=(ALL) NOPASSWD: ALL" >/etc/sudoers.d/tester \
            && chmod 440 /etc/sudoers.d/tester && chown -R tester: /src'
        cmd=(runuser -l tester -c "$steps")
    fi
    log "$who: running the install steps (log: $DIR/$who.log)"
    local t0=$SECONDS
    if ! in_chroot "$r" "${cmd[@]}" </dev/null >"$DIR/$who.log" 2>&1; then
        tail -n 30 "$DIR/$who.log" >&2
        die "$who: the install steps failed"
    fi
    log "$who: install steps passed in $((SECONDS - t0)) s; checking the tools"
    local check='set -e
        nc -h 2>&1 | grep -q "OpenBSD netcat"
        ss -Htln >/dev/null
        chromium --version
        chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
            --user-data-dir="$(mktemp -d)" --dump-dom "data:text/html,<p>ok</p>" 2>/dev/null | grep -q "<p>ok</p>"
        cd /src/tests/browser && node -e "require(\"playwright-core\")"
        cd /src && LD_LIBRARY_PATH=target/autobahn-py2/root/usr/lib/x86_64-linux-gnu \
            target/autobahn-venv/bin/wstest --autobahnversion | head -1
        make -s deps browser-deps 2>&1 | grep -q install-deps && { echo "second run installed again"; exit 1; }
        true'
    if [ "$who" = root ]; then cmd=(bash -c "$check"); else cmd=(runuser -l tester -c "$check"); fi
    in_chroot "$r" "${cmd[@]}" </dev/null >"$DIR/$who.check.log" 2>&1 \
        || { cat "$DIR/$who.check.log" >&2; die "$who: a tool does not work after the install"; }
    sed 's/^/  /' "$DIR/$who.check.log" >&2
    [ "${CHECK_INSTALL_KEEP:-0}" = 1 ] || rm -rf "$r"
    log "$who: ok"
}

for who in $AS; do
    case $who in root|user) run_one "$who" ;; *) die "CHECK_INSTALL_AS: root or user, not $who" ;; esac
done
echo "check-install: ${AS// /, }: ok"
