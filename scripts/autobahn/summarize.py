"""Reads an Autobahn fuzzingclient index.json and prints one line per failing
case, then `autobahn: N passed, M failed`. Exit status 1 if any case failed
(or none ran).

A case passes when its behavior is OK, NON-STRICT or INFORMATIONAL and its
closing behavior is none of FAILED, UNCLEAN, WRONG CODE. A closing behavior of
FAILED BY CLIENT (the client, not the server, dropped TCP: a preference, not a
MUST) is printed as a note and still passes. Runs under Python 2.7 or 3.
"""

from __future__ import print_function

import json
import os
import sys

PASS = ("OK", "NON-STRICT", "INFORMATIONAL")
CLOSE_FAIL = ("FAILED", "UNCLEAN", "WRONG CODE")


def duration_ms(c):
    # A case whose handshake never completed has a meaningless duration.
    d = c.get("duration") or 0
    return d if 0 <= d < 86400000 else 0


def why(report_dir, c):
    # The per-case JSON says in words what went wrong.
    try:
        with open(os.path.join(report_dir, c.get("reportfile") or "")) as f:
            r = json.load(f)
        return "%s / %s" % (r.get("result"), r.get("resultClose"))
    except (IOError, OSError, ValueError):
        return "?"


def case_key(cid):
    return tuple(int(p) if p.isdigit() else p for p in cid.split("."))


def main(path):
    with open(path) as f:
        index = json.load(f)
    passed = failed = 0
    groups = {}
    for agent in index:
        for cid, c in index[agent].items():
            g = groups.setdefault(cid.split(".")[0], [0, 0])
            g[0] += 1
            g[1] += duration_ms(c)
    for g in sorted(groups, key=int):
        print("timing: cases %s.*: %d cases, %.2f s" % (g, groups[g][0], groups[g][1] / 1000.0))
    for agent in sorted(index):
        cases = index[agent]
        for cid in sorted(cases, key=case_key):
            c = cases[cid]
            beh = c.get("behavior")
            close = c.get("behaviorClose")
            if beh in PASS and close not in CLOSE_FAIL:
                passed += 1
                if close not in ("OK", "INFORMATIONAL"):
                    print("note: %s %s: behavior %s, close %s (close code %s)"
                          % (agent, cid, beh, close, c.get("remoteCloseCode")))
            else:
                failed += 1
                print("FAIL: %s %s: behavior %s, close %s (close code %s, %d ms): %s [%s]"
                      % (agent, cid, beh, close, c.get("remoteCloseCode"),
                         duration_ms(c), why(os.path.dirname(path), c),
                         c.get("reportfile")))
    print("autobahn: %d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
