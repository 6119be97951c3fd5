#!/usr/bin/env python3
"""Finds import cycles between the modules of each crate of the workspace.

A module is a file under src/ (src/a/b.rs and src/a/b/mod.rs are `a::b`; lib.rs and
main.rs are the root). An edge A -> B is a path in A's code (outside #[cfg(test)] modules)
that names B: `crate::b::...`, `super::...`, `self::...`, or a child declared with `mod`.
Edges from a module to its own descendants or ancestors are not cycles of concern (a parent
declares its children; a child uses what its parent re-exports), so only modules that are
neither ancestor nor descendant of each other are compared. Prints each cycle; exits 1 when
there is one.

    python3 scripts/module-cycles.py            # every crate under crates/
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def module_name(src: pathlib.Path, f: pathlib.Path) -> tuple:
    parts = list(f.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_tests(text: str) -> str:
    """Drops `#[cfg(test)] mod x { ... }` blocks (brace matching) and comments."""
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def resolve(path: list, here: tuple, modules: set):
    """The longest known module a path (split on ::) names, from module `here`."""
    if not path:
        return None
    head, rest = path[0], path[1:]
    if head == "crate":
        base = ()
    elif head == "self":
        base = here
    elif head == "super":
        base = here[:-1]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    else:
        return None
    best = base if base in modules else None
    cur = base
    for p in rest:
        cur = cur + (p,)
        if cur in modules:
            best = cur
        else:
            break
    return best


def crate_graph(src: pathlib.Path):
    files = sorted(src.rglob("*.rs"))
    modules = {module_name(src, f): f for f in files}
    graph = {m: set() for m in modules}
    for m, f in modules.items():
        text = strip_tests(f.read_text())
        # `use a::{b, c::d}` groups: expand one level of braces.
        for use in re.finditer(r"\buse\s+([^;]+);", text):
            body = re.sub(r"\s+", "", use.group(1))
            prefix, _, group = body.partition("{")
            items = [prefix] if not group else [prefix + g for g in re.split(r",(?![^{]*\})", group.rstrip("}"))]
            for item in items:
                target = resolve([p for p in item.split("::") if p], m, set(modules))
                if target is not None:
                    graph[m].add(target)
        for path in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", text):
            target = resolve(path.group(1).split("::"), m, set(modules))
            if target is not None:
                graph[m].add(target)
    return graph


def related(a: tuple, b: tuple) -> bool:
    return a[: len(b)] == b or b[: len(a)] == a


def cycles(graph):
    found = []
    for a in graph:
        for b in graph[a]:
            if related(a, b):
                continue
            # Is there a path b -> ... -> a through unrelated hops?
            seen, stack = {b}, [(b, [a, b])]
            while stack:
                node, trail = stack.pop()
                for n in graph[node]:
                    if n == a:
                        found.append(trail + [a])
                        stack = []
                        break
                    if n not in seen and not related(node, n):
                        seen.add(n)
                        stack.append((n, trail + [n]))
    return found


def main() -> int:
    bad = 0
    for crate in sorted((ROOT / "crates").iterdir()):
        src = crate / "src"
        if not src.is_dir():
            continue
        graph = crate_graph(src)
        cyc = cycles(graph)
        edges = sum(len(v) for v in graph.values())
        print(f"{crate.name}: {len(graph)} modules, {edges} edges, {len(cyc)} cycles")
        shown = set()
        for c in cyc:
            key = frozenset(c)
            if key in shown:
                continue
            shown.add(key)
            print("   cycle: " + " -> ".join("::".join(p) or "crate" for p in c))
            bad = 1
    return bad


if __name__ == "__main__":
    sys.exit(main())
