#!/usr/bin/env python3
"""Prints 'N passed, N failed, N skipped' from meson's testlog.json.

doctest executables report their test cases ("test cases: 12 | 11 passed | 1 failed");
those are counted case by case, other tests by their meson result."""
import json
import re
import sys

CASES = re.compile(r"test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed\s*\|\s*(\d+) skipped")

passed = failed = skipped = 0
try:
    lines = open(sys.argv[1], encoding="utf-8", errors="replace").read().splitlines()
except OSError as e:
    print(f"cannot read test log: {e}", file=sys.stderr)
    print("0 passed, 1 failed")
    sys.exit(0)
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
