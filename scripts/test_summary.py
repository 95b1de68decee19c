#!/usr/bin/env python3
"""Prints 'N passed, N failed, N skipped' from meson's testlog.json files.

doctest executables report their test cases ("test cases: 12 | 11 passed | 1 failed");
those are counted case by case, other tests by their meson result.
Usage: test_summary.py [--extra PASSED FAILED] TESTLOG.json...
(--extra adds counts from elsewhere: fuzz targets, sanitizer reports, failed builds.)"""
import json
import re
import sys

CASES = re.compile(r"test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed\s*\|\s*(\d+) skipped")

passed = failed = skipped = 0
args = sys.argv[1:]
if args[:1] == ["--extra"]:
    passed += int(args[1])
    failed += int(args[2])
    args = args[3:]
if not args:
    failed += 1  # no test ran at all
for path in args:
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError as e:
        print(f"cannot read test log: {e}", file=sys.stderr)
        failed += 1
        continue
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        result = t.get("result", "")
        m = None
        for m in CASES.finditer(t.get("stdout", "") or ""):
            pass
        if result == "SKIP":
            skipped += 1
        elif m and result in ("OK", "FAIL"):
            passed += int(m.group(2))
            failed += int(m.group(3))
            skipped += int(m.group(4))
            if result == "FAIL" and int(m.group(3)) == 0:
                failed += 1  # crashed or exited non-zero outside a test case
        elif result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
