#!/usr/bin/env python3
"""Fails when a source file grows past about 300 lines: split it by purpose
(docs/ARCHITECTURE.md, "Where new things go"). The generated schema and
the lock file are exempt; the docs are pages, not code, and are not counted.
"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 320
SOURCES = (".rs", ".py", ".sh", ".sql", ".lua")
EXEMPT = {"src/schema.rs"}


def main() -> int:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split()
    too_long = []
    for name in tracked:
        path = ROOT / name
        if name in EXEMPT or not name.endswith(SOURCES) or not path.is_file():
            continue
        lines = path.read_text(errors="replace").count("\n")
        if lines > LIMIT:
            too_long.append((lines, name))
    for lines, name in sorted(too_long, reverse=True):
        print(f"{name}: {lines} lines, over {LIMIT}: split it into files of one purpose")
    if not too_long:
        print(f"every source file is at most {LIMIT} lines")
    return 1 if too_long else 0


if __name__ == "__main__":
    sys.exit(main())
