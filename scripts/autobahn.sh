#!/usr/bin/env bash
# Autobahn TestSuite (fuzzingclient) against natter's WebSocket endpoint.
#
#   scripts/autobahn.sh                        build natter, run cases 1-7 and 9
#   AUTOBAHN_CASES='1.*,2.*,3.*,4.*,5.*,6.*,7.*' scripts/autobahn.sh   (no 9.*: CI)
#   AUTOBAHN_TLS=1 scripts/autobahn.sh         the same over wss:// (natter --tls-self-signed)
#   AUTOBAHN_URL=ws://127.0.0.1:9001/ scripts/autobahn.sh   test a server already running
#   AUTOBAHN_SELFTEST=1 scripts/autobahn.sh    test the harness on a reference echo server
#   AUTOBAHN_SETUP_ONLY=1 scripts/autobahn.sh  only install/fetch wstest, run nothing
#
# wstest (autobahntestsuite 25.10.1, the newest release) is Python 2.7 code, and
# neither Debian 12 nor PyPI has a Python 2.7: the interpreter is unpacked from
# Debian 11 (bullseye) packages into target/autobahn-py2 (nothing is installed
# into the system), and wstest goes into a Python 2.7 virtualenv in
# target/autobahn-venv. Everything lives under target/ and is reused next time.
# (A python2.7 on PATH, such as a pyenv shim, is not used.) What it needs from
# the machine, it installs with scripts/install-deps.sh if missing: gcc and
# libc6-dev (wsaccel's C extension), debian-archive-keyring (to check the
# bullseye packages) and python3-venv (the venv module of Debian's python3).
#
# Output: one line per failing case, then `autobahn: N passed, M failed`; the
# HTML/JSON report is in target/autobahn-report (target/autobahn-tls-report
# with AUTOBAHN_TLS=1). Exit status 1 if any case failed.
#
# Over TLS, natter makes a self-signed certificate at start; wstest's TLS
# client (Twisted's ClientContextFactory, with pyOpenSSL and cryptography from
# requirements-py27.txt) checks no certificate and sends no SNI, so it takes it
# as it is. A plain run and a TLS run may go at the same time: each has its own
# port and its own report and run directories, and the shared setup (the
# venvs, python2.7, `cargo build --release`) is done under a lock
# (target/autobahn-setup.lock, flock) by whichever comes first.
#
# Environment:
#   AUTOBAHN_CASES        comma-separated case patterns (default 1.* .. 7.*,9.*)
#   AUTOBAHN_EXCLUDE      comma-separated case patterns to leave out (default none)
#   AUTOBAHN_TLS          1: natter with --tls-self-signed, tested at wss://127.0.0.1:PORT/echo
#                         (default 0: ws://)
#   AUTOBAHN_URL          WebSocket URL of a running server (ws:// or wss://); natter
#                         is then not started
#   AUTOBAHN_PATH         path of natter's endpoint (default /echo: the --ws-echo
#                         endpoint, the chat's frame codec and loop without the chat,
#                         since Autobahn expects every message echoed)
#   AUTOBAHN_NATTER_ARGS  extra natter flags, word-split (default none)
#   AUTOBAHN_TIMEOUT      seconds wstest may run (default 1800)
#   AUTOBAHN_SELFTEST     1: run against scripts/autobahn/echo_server.py instead of natter
#                         (plain ws:// only)
#   AUTOBAHN_REPORT, AUTOBAHN_WORK  the report and run directories (default
#                         target/autobahn-report and target/autobahn-run, or
#                         target/autobahn-tls-report and target/autobahn-tls-run)
#   AUTOBAHN_SETUP_ONLY   1: stop once wstest is ready (nothing is built or run)
#   AUTOBAHN_DEBIAN_MIRROR, AUTOBAHN_DEBIAN_SUITE  where python2.7 comes from
#                         (default http://deb.debian.org/debian bullseye)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
HERE=$ROOT/scripts/autobahn
T=$ROOT/target
PY2=$T/autobahn-py2             # unpacked Debian python2.7
VENV=$T/autobahn-venv           # Python 2.7 virtualenv with wstest
TOOLS=$T/autobahn-tools         # Python 3 venv: virtualenv (and websockets for the self-test)
TLS=${AUTOBAHN_TLS:-0}
[ "$TLS" = 1 ] && tag=-tls || tag=""
REPORT=${AUTOBAHN_REPORT:-$T/autobahn$tag-report}
WORK=${AUTOBAHN_WORK:-$T/autobahn$tag-run}   # spec, server and wstest logs of the last run

CASES=${AUTOBAHN_CASES:-1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*}
EXCLUDE=${AUTOBAHN_EXCLUDE:-}
URL=${AUTOBAHN_URL:-}
WSPATH=${AUTOBAHN_PATH:-/echo}
TIMEOUT=${AUTOBAHN_TIMEOUT:-1800}
SELFTEST=${AUTOBAHN_SELFTEST:-0}
SETUP_ONLY=${AUTOBAHN_SETUP_ONLY:-0}
MIRROR=${AUTOBAHN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${AUTOBAHN_DEBIAN_SUITE:-bullseye}
PY3=${PYTHON3:-python3}

# python2.7 and the libraries bookworm no longer has (libssl1.1, libffi7);
# the -dev packages give Python.h for wsaccel's C extension.
PY2_DEBS=(python2.7 python2.7-minimal libpython2.7 libpython2.7-minimal libpython2.7-stdlib
          python2.7-dev libpython2.7-dev libssl1.1 libffi7)

SERVER_PID=""
log() { echo "autobahn.sh${tag:+ (wss)}: $*" >&2; }
die() { log "$*"; exit 2; }

stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# Runs a command with the unpacked python2.7's private libraries visible.
py2() { LD_LIBRARY_PATH="$PY2/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; }

# The machine's part: installed (as root or through sudo) only where missing.
setup_host() {
    local need=(gcc=gcc libc6-dev debian-archive-keyring)
    "$PY3" -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
    "$ROOT/scripts/install-deps.sh" "${need[@]}"
    "$PY3" -c 'import venv, ensurepip' \
        || die "$PY3 cannot create a venv (no venv/ensurepip module); set PYTHON3 to one that can"
}

setup_py2() {
    local want="$MIRROR $SUITE ${PY2_DEBS[*]}"
    if [ -x "$PY2/root/usr/bin/python2.7" ] && [ "$(cat "$PY2/.stamp" 2>/dev/null)" = "$want" ]; then
        return
    fi
    if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
        die "needs apt-get and dpkg-deb (a Debian machine) to fetch python2.7"
    fi
    log "fetching python2.7 from Debian $SUITE into $PY2"
    rm -rf "$PY2"
    mkdir -p "$PY2/apt/lists/partial" "$PY2/apt/cache/archives/partial" "$PY2/debs"
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -r "$keyring" ] || die "missing $keyring (package debian-archive-keyring)"
    echo "deb [signed-by=$keyring] $MIRROR $SUITE main" >"$PY2/apt/sources.list"
    # A private apt state: the system's sources, lists and dpkg database are untouched.
    local apt=(-o "Dir::Etc::SourceList=$PY2/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
               -o "Dir::State::Lists=$PY2/apt/lists" -o "Dir::Cache=$PY2/apt/cache"
               -o APT::Sandbox::User=root -o Debug::NoLocking=1 -qq)
    apt-get "${apt[@]}" update
    (cd "$PY2/debs" && apt-get "${apt[@]}" download "${PY2_DEBS[@]}")
    local d
    for d in "$PY2"/debs/*.deb; do dpkg-deb -x "$d" "$PY2/root"; done
    rm -rf "$PY2/apt/cache"
    py2 "$PY2/root/usr/bin/python2.7" -c 'import ssl, ctypes, hashlib, zlib' \
        || die "the unpacked python2.7 does not start"
    echo "$want" >"$PY2/.stamp"
}

setup_tools() {
    local want
    want=$(hash_of "$HERE/requirements-tools.txt")
    if [ -x "$TOOLS/bin/virtualenv" ] && [ "$(cat "$TOOLS/.stamp" 2>/dev/null)" = "$want" ]; then
        return
    fi
    log "creating $TOOLS"
    rm -rf "$TOOLS"
    "$PY3" -m venv "$TOOLS"
    "$TOOLS/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements-tools.txt"
    echo "$want" >"$TOOLS/.stamp"
}

setup_venv() {
    local want
    want="$(hash_of "$HERE/requirements-py27.txt") $(cat "$PY2/.stamp")"
    if [ -x "$VENV/bin/wstest" ] && [ "$(cat "$VENV/.stamp" 2>/dev/null)" = "$want" ]; then
        return
    fi
    log "creating the Python 2.7 virtualenv $VENV"
    rm -rf "$VENV"
    py2 env VIRTUALENV_OVERRIDE_APP_DATA="$TOOLS/virtualenv-data" \
        "$TOOLS/bin/virtualenv" -q -p "$PY2/root/usr/bin/python2.7" "$VENV"
    # wsaccel (autobahn[accelerate]) compiles against the unpacked headers.
    local inc="-I$PY2/root/usr/include/python2.7 -I$PY2/root/usr/include"
    py2 env CFLAGS="$inc" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_PYTHON_VERSION_WARNING=1 \
        "$VENV/bin/pip" install -q -r "$HERE/requirements-py27.txt"
    py2 "$VENV/bin/wstest" --autobahnversion >/dev/null || die "wstest does not start"
    echo "$want" >"$VENV/.stamp"
}

# Starts "$@" in the background, its stdout to a file; waits for the first line
# `<name> listening on 127.0.0.1:PORT` and sets ADDR to 127.0.0.1:PORT.
start_server() {
    local out=$WORK/server.out err=$WORK/server.err line=""
    : >"$out"; : >"$err"
    "$@" >"$out" 2>"$err" </dev/null &
    SERVER_PID=$!
    for _ in $(seq 300); do
        line=$(head -n1 "$out")
        if [[ $line =~ ^[a-z]+\ listening\ on\ (127\.0\.0\.1:[0-9]+)$ ]]; then
            ADDR=${BASH_REMATCH[1]}
            log "server pid $SERVER_PID listening on $ADDR"
            return
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            tail -n 20 "$err" >&2 || true
            die "server exited before it announced its port"
        fi
        sleep 0.1
    done
    tail -n 20 "$err" >&2 || true
    die "server did not print '... listening on 127.0.0.1:PORT' within 30 s (got: '$line')"
}

json_list() {  # "a,b , c" -> ["a", "b", "c"]
    local IFS=, out="" x
    for x in $1; do
        x=$(echo "$x" | tr -d '[:space:]')
        [ -n "$x" ] && out+="${out:+, }\"$x\""
    done
    echo "[$out]"
}

[ "$TLS" = 1 ] && [ "$SELFTEST" = 1 ] && die "AUTOBAHN_TLS=1 does not go with AUTOBAHN_SELFTEST=1 (the echo server speaks ws:// only)"
mkdir -p "$T" "$WORK"
t0=$SECONDS
# One setup at a time: a plain and a TLS run started together must not both
# build the same venv (the lock goes with the file descriptor, closed below).
exec 9>"$T/autobahn-setup.lock"
command -v flock >/dev/null && flock 9
setup_host
setup_py2
setup_tools
setup_venv
log "wstest ready ($(py2 "$VENV/bin/wstest" --autobahnversion | tr '\n' ' ')) in $((SECONDS - t0)) s"
if [ "$SETUP_ONLY" = 1 ]; then exit 0; fi
if [ -z "$URL" ] && [ "$SELFTEST" != 1 ]; then
    cargo build --release
fi
exec 9>&-

agent=natter
if [ -n "$URL" ]; then
    agent=testee
elif [ "$SELFTEST" = 1 ]; then
    agent=echo-websockets
    start_server "$TOOLS/bin/python" -u "$HERE/echo_server.py" 0
    URL="ws://$ADDR/"
else
    tls_args=()
    scheme=ws
    if [ "$TLS" = 1 ]; then
        # A certificate made for this run; wstest accepts it unchecked.
        tls_args=(--tls-self-signed)
        scheme=wss
        agent=natter-tls
    fi
    # shellcheck disable=SC2086  # AUTOBAHN_NATTER_ARGS is word-split on purpose
    # Autobahn sends messages of up to 16 MiB in bursts: raise the limits
    # that would otherwise (rightly) refuse them. The echo keeps no history:
    # no database (so no natter.db left in the repository, and none shared
    # by a plain and a TLS run going at once).
    start_server "$T/release/natter" --listen 127.0.0.1:0 --db :memory: --ws-echo "${tls_args[@]}" \
        --max-ws-message 16777216 --max-outbound 134217728 ${AUTOBAHN_NATTER_ARGS:-}
    URL="$scheme://$ADDR$WSPATH"
    if [ "$TLS" = 1 ]; then
        fp=$(grep -o 'SHA-256 [0-9A-F:]*' "$WORK/server.err" | head -n1 || true)
        log "natter's self-signed certificate: ${fp:-(fingerprint not in its log)}"
    fi
fi

rm -rf "$REPORT"
cat >"$WORK/spec.json" <<EOF
{
  "options": {"failByDrop": false},
  "outdir": "$REPORT",
  "servers": [{"agent": "$agent", "url": "$URL"}],
  "cases": $(json_list "$CASES"),
  "exclude-cases": $(json_list "$EXCLUDE"),
  "exclude-agent-cases": {}
}
EOF
log "running cases $CASES against $URL (timeout ${TIMEOUT}s; log $WORK/wstest.log)"
t1=$SECONDS
rc=0
(cd "$WORK" && py2 timeout -k 10 "$TIMEOUT" "$VENV/bin/wstest" -m fuzzingclient -s "$WORK/spec.json") \
    >"$WORK/wstest.log" 2>&1 || rc=$?
log "wstest finished in $((SECONDS - t1)) s with status $rc"
stop_server

if [ ! -s "$REPORT/index.json" ]; then
    tail -n 30 "$WORK/wstest.log" >&2 || true
    [ "$rc" = 124 ] && log "wstest ran out of time (AUTOBAHN_TIMEOUT=$TIMEOUT)"
    echo "autobahn: 0 passed, 1 failed"
    exit 1
fi
py2 "$VENV/bin/python" "$HERE/summarize.py" "$REPORT/index.json"
