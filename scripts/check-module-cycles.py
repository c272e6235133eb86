#!/usr/bin/env python3
"""Fails when two modules of src/ depend on each other, directly or round a loop.

A module is a file or folder of src/. Each reference to `crate::a::b::...`,
`super::...` or `self::...` (in `use` trees and in code) is an arrow from the
referring module to the referenced one, lifted to the pair of siblings under
their nearest common parent: `crate::db::pool` using `crate::config::X` is an
arrow db -> config. A child may use what its parent declares (that is what a
parent module is for), so arrows to an ancestor are not counted. A loop
among siblings is reported with one reference behind each of its arrows.
"""
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"


def module_path(file: Path) -> tuple:
    parts = list(file.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return tuple(parts)


def strip_comments_and_strings(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group().count("\n"), text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    return re.sub(r'"(?:\\.|[^"\\])*"', lambda m: '"' + "\n" * m.group().count("\n") + '"', text)


def expand_use_tree(tree: str) -> list:
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"]."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix: str, s: str):
        depth, start, items = 0, 0, []
        for i, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                items.append(s[start:i])
                start = i + 1
        items.append(s[start:])
        for item in filter(None, items):
            if "{" in item:
                head, rest = item.split("{", 1)
                walk(prefix + head, rest[: rest.rindex("}")])
            else:
                out.append(prefix + item)

    walk("", tree)
    return out


def references(text: str) -> list:
    """(line, path segments) for every crate/super/self path in the file."""
    found = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        line = text.count("\n", 0, m.start()) + 1
        for path in expand_use_tree(m.group(1)):
            found.append((line, path.split("::")))
    without_uses = re.sub(r"\buse\s+[^;]+;", "", text)
    for m in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", without_uses):
        line = without_uses.count("\n", 0, m.start()) + 1
        found.append((line, m.group(1).split("::")))
    return found


def resolve(current: tuple, segments: list):
    """The absolute module path a `crate::`, `self::` or `super::` path names."""
    if segments[0] == "crate":
        return tuple(segments[1:])
    base, rest = list(current), list(segments)
    if rest[0] == "self":
        rest = rest[1:]
    while rest and rest[0] == "super":
        base, rest = base[:-1], rest[1:]
    return tuple(base) + tuple(rest)


def main() -> int:
    files = sorted(p for p in ROOT.rglob("*.rs") if "bin" not in p.relative_to(ROOT).parts[:1])
    modules = {module_path(f) for f in files}
    edges = defaultdict(list)  # (parent, from_child, to_child) -> [where]
    for file in files:
        current = module_path(file)
        text = strip_comments_and_strings(file.read_text())
        for line, segments in references(text):
            if segments[0] not in ("crate", "self", "super"):
                continue
            target = resolve(current, segments)
            # The longest prefix of the path that is a module of ours.
            while target and target not in modules:
                target = target[:-1]
            common = 0
            while common < min(len(current), len(target)) and current[common] == target[common]:
                common += 1
            if common == len(target) or common == len(current):
                continue  # the module itself, an ancestor, or its own child
            key = (current[:common], current[common], target[common])
            edges[key].append(f"{file.relative_to(ROOT.parent)}:{line} uses {'::'.join(segments)}")

    graphs = defaultdict(lambda: defaultdict(set))
    for parent, a, b in edges:
        graphs[parent][a].add(b)

    loops = []
    for parent, graph in graphs.items():
        for component in strongly_connected(graph):
            if len(component) > 1:
                loops.append((parent, component))

    for parent, component in sorted(loops):
        where = "crate" if not parent else "crate::" + "::".join(parent)
        print(f"modules of {where} that depend on each other: {', '.join(sorted(component))}")
        for a in sorted(component):
            for b in sorted(graphs[parent][a] & set(component)):
                print(f"  {a} -> {b}: {edges[(parent, a, b)][0]}")
    if loops:
        print("make the arrows point one way (docs/ARCHITECTURE.md, \"Dependencies\")")
        return 1
    print("no module of src/ depends on one that depends back on it")
    return 0


def strongly_connected(graph):
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            out.append(component)

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    sys.exit(main())
