#!/usr/bin/env python3
"""Print every pair of core modules that import each other, and exit 1 if there is one.

A module is a file under core/src. An import is any path in the file (a `use` or inline)
that starts at `crate::`, `super::`, `self::` or one of the module's own submodules, resolved
to the deepest module it names; `use a::{b, c}` groups are expanded. A file's
`#[cfg(test)] mod tests` is left out (tests may reach anywhere), and so are a module's
`pub use` re-exports and `mod` declarations (its face, not what it depends on).
"""
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core", "src"))


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    return tuple(rel[:-1] if rel[-1] in ("mod", "lib") else rel)


MODS = {}
for d, _, fs in os.walk(ROOT):
    for f in fs:
        if f.endswith(".rs"):
            MODS[module_of(os.path.join(d, f))] = os.path.join(d, f)


def resolve(parts):
    best = None
    for i in range(1, len(parts) + 1):
        if tuple(parts[:i]) in MODS:
            best = tuple(parts[:i])
    return best


def expand(path_text):
    """`a::{b, c::d}` -> ['a::b', 'a::c::d'] (one level of braces is all the code uses)."""
    m = re.match(r"^([\w:]*?)::\{(.*)\}$", path_text, re.S)
    if not m:
        return [path_text]
    return [m.group(1) + "::" + p.strip() for p in m.group(2).split(",") if p.strip()]


def imports(mod, path):
    src = open(path).read().split("#[cfg(test)]\nmod tests")[0]
    src = re.sub(r"//[^\n]*", "", src)
    # A module's `pub use` re-exports and `mod` lines are its face, not imports.
    src = re.sub(r"(?m)^pub(?:\([\w]+\))? use [^;]*;|^(?:pub )?mod \w+;", "", src)
    children = {k[-1] for k in MODS if len(k) == len(mod) + 1 and k[: len(mod)] == mod}
    heads = ["crate", "super", "self"] + sorted(children)
    found = set()
    pat = r"\b((?:%s)::(?:\{[^}]*\}|[\w:{}, ]*[\w}]))" % "|".join(map(re.escape, heads))
    for text in re.findall(pat, src):
        for p in expand(re.sub(r"\s+", "", text)):
            parts = [x for x in p.split("::") if x]
            if parts[0] == "crate":
                base, parts = [], parts[1:]
            elif parts[0] in ("super", "self"):
                base = list(mod)
                while parts and parts[0] in ("super", "self"):
                    if parts[0] == "super":
                        base = base[:-1]
                    parts = parts[1:]
            else:
                base = list(mod)
            t = resolve(base + parts)
            if t and t != mod:
                found.add(t)
    return found


edges = {(m, t) for m, p in MODS.items() for t in imports(m, p)}
pairs = sorted({tuple(sorted((a, b))) for a, b in edges if (b, a) in edges})
for a, b in pairs:
    print("::".join(a), "<->", "::".join(b))
if "-v" in sys.argv:
    for a, b in sorted(edges):
        print("  ", "::".join(a), "->", "::".join(b))
sys.exit(1 if pairs else 0)
