#!/usr/bin/env python3
"""Check the relative links of README.md and docs/*.md.

Every link that is not http(s) or mailto must name a file or directory
inside the repository; a `#anchor` into a Markdown file (or within the same
file) must name one of its headings, slugged as GitHub does. Links that
leave the repository (`../shared/...`) are refused: they break for anyone
reading the repository on its own. Prints one line per broken link and
exits 1 when there is any.

    scripts/check-links.py [FILE.md ...]   (default: README.md docs/*.md)
"""

import re
import sys
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent

# [text](target "title") and [text]: target reference definitions; images too.
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s{0,3}(```|~~~)")
EXTERNAL = ("http://", "https://", "mailto:")


def without_code(lines):
    """The lines outside fenced code blocks, with their numbers, inline code blanked."""
    fence = None
    for number, line in enumerate(lines, 1):
        match = FENCE.match(line)
        if match:
            if fence is None:
                fence = match.group(1)
            elif line.strip().startswith(fence):
                fence = None
            continue
        if fence is None:
            yield number, re.sub(r"`[^`]*`", lambda m: " " * len(m.group(0)), line)


def slug(heading):
    """GitHub's anchor for a heading: lower case, markup and punctuation
    dropped (letters, digits, `-`, `_` and spaces kept), spaces as `-`."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path, cache={}):
    if path not in cache:
        seen = {}
        found = set()
        fence = None
        for line in path.read_text(encoding="utf-8").splitlines():
            match = FENCE.match(line)
            if match:
                if fence is None:
                    fence = match.group(1)
                elif line.strip().startswith(fence):
                    fence = None
                continue
            heading = HEADING.match(line) if fence is None else None
            if heading:
                base = slug(heading.group(2))
                count = seen.get(base, 0)
                seen[base] = count + 1
                found.add(base if count == 0 else f"{base}-{count}")
        cache[path] = found
    return cache[path]


def check(path):
    problems = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in without_code(lines):
        targets = [m.group(1) for m in INLINE.finditer(line)]
        reference = REFERENCE.match(line)
        if reference:
            targets.append(reference.group(1))
        for target in targets:
            problem = broken(path, target)
            if problem:
                where = path.relative_to(ROOT)
                problems.append(f"{where}:{number}: {target}: {problem}")
    return problems


def broken(source, target):
    if target.startswith(EXTERNAL):
        return None
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
        return "only http(s) and mailto links may leave the repository"
    link, _, anchor = target.partition("#")
    link = unquote(link)
    if link.startswith("/"):
        return "absolute paths do not resolve on GitHub; use a relative link"
    file = (source.parent / link).resolve() if link else source
    try:
        file.relative_to(ROOT)
    except ValueError:
        return "points outside the repository"
    if not file.exists():
        return "no such file in the repository"
    if anchor:
        if file.suffix != ".md":
            return None  # line anchors (#L10) into code are GitHub's business
        if unquote(anchor).lower() not in anchors(file):
            return f"no heading with the anchor #{anchor} in {file.relative_to(ROOT)}"
    return None


def main(argv):
    files = [Path(a).resolve() for a in argv] or [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    problems = [problem for file in files for problem in check(file)]
    for problem in problems:
        print(problem)
    if problems:
        print(f"check-links: {len(problems)} broken link(s) above; fix them (only http(s) links may leave the repository).")
        return 1
    print(f"check-links: every link of {len(files)} file(s) resolves inside the repository")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
