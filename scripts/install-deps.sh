#!/usr/bin/env bash
# Installs, from Debian's packages, whichever of the given packages is missing.
#
#   scripts/install-deps.sh COMMAND=PACKAGE ... PACKAGE ...
#
# COMMAND=PACKAGE installs PACKAGE when COMMAND is not on PATH; a bare PACKAGE
# installs it when dpkg does not have it. A package named twice is installed
# once. apt-get's exit status decides: a command still not on PATH afterwards
# (PATH not covering /usr/sbin, say) is reported, and left to the test that
# needs it to fail with its own message.
# Example: scripts/install-deps.sh nc.openbsd=netcat-openbsd ss=iproute2
#
# Works as root (apt-get directly) and as a user with sudo (sudo apt-get); apt
# never asks anything (DEBIAN_FRONTEND=noninteractive, -y, old config files
# kept), runs `apt-get update` first, and waits for another apt's lock.
set -euo pipefail

log() { echo "install-deps: $*" >&2; }

missing=()
want() {  # adds a package to `missing` once
    local p
    for p in "${missing[@]}"; do [ "$p" = "$1" ] && return; done
    missing+=("$1")
}
for spec in "$@"; do
    if [[ $spec == *=* ]]; then
        command -v "${spec%%=*}" >/dev/null 2>&1 || want "${spec#*=}"
    else
        [ "$(dpkg-query -W -f='${Status}' "$spec" 2>/dev/null)" = "install ok installed" ] \
            || want "$spec"
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    log "${missing[*]} missing, and you are neither root nor have sudo."
    log "As root, run: apt-get update && apt-get install -y ${missing[*]}"
    exit 1
fi
command -v apt-get >/dev/null 2>&1 || { log "needs apt-get (Debian) to install ${missing[*]}"; exit 1; }

# `env VAR=value cmd` rather than `VAR=value cmd`: it is a command both with
# and without sudo in front, and sudo's env_reset does not drop the variable.
apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
     -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

# `apt-get update` does not wait for a lock held by another apt (install does,
# DPkg::Lock::Timeout): retry while the failure is a lock, for up to 10 minutes.
out=$(mktemp)
trap 'rm -f "$out" "$out.rc"' EXIT
retry() {
    local i
    for i in $(seq 60); do
        { "$@" 2>&1 || echo "exit status $?" >"$out.rc"; } | tee "$out"
        [ -e "$out.rc" ] || return 0
        rm -f "$out.rc"
        grep -qiE 'could not get lock|unable to lock|unable to acquire' "$out" || return 1
        log "another apt holds its lock; retrying in 10 s ($i)"
        sleep 10
    done
    return 1
}

log "installing ${missing[*]}${as_root:+ (with sudo)}"
retry "${apt[@]}" update
retry "${apt[@]}" install "${missing[@]}"

for spec in "$@"; do
    if [[ $spec == *=* ]] && ! command -v "${spec%%=*}" >/dev/null 2>&1; then
        log "warning: apt-get installed ${spec#*=}, but ${spec%%=*} is not on PATH ($PATH)"
    fi
done
