#!/usr/bin/env python3
"""Fails when modules of the library below the window import each other in a circle.

Each file under src/{core,session,preset,export,cli} is a module (`mod.rs` is its folder's). An
edge a -> b is a `crate::` (or `super::`) path in a's code (comments left out) that names module b or an item in
it; a module's own children and parents are not edges of their own. Prints each circle found."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "src"
modules = {}
for f in root.rglob("*.rs"):
    parts = f.relative_to(root).with_suffix("").parts
    if parts[0] not in ("core", "session", "preset", "export", "cli"):
        continue
    if parts[-1] == "mod":
        parts = parts[:-1]
    modules["::".join(parts)] = f

edges = {m: set() for m in modules}
for m, f in modules.items():
    code = re.sub(r"//[^\n]*", "", f.read_text())
    code = code.split("#[cfg(test)]")[0]  # unit tests may use anything
    parent = m.rsplit("::", 1)[0] if "::" in m else ""
    paths = re.findall(r"crate::([a-z_][a-z_0-9]*(?:::[a-z_][a-z_0-9]*)*)", code)
    paths += [parent + "::" + p for p in re.findall(r"\bsuper::([a-z_][a-z_0-9]*(?:::[a-z_][a-z_0-9]*)*)", code)]
    for path in paths:
        names = path.split("::")
        target = None
        for i in range(len(names), 0, -1):
            if "::".join(names[:i]) in modules:
                target = "::".join(names[:i])
                break
        if target and target != m and not target.startswith(m + "::") and not m.startswith(target + "::"):
            edges[m].add(target)

circles, state = [], {}


def visit(m, stack):
    state[m] = 1
    stack.append(m)
    for t in sorted(edges[m]):
        if state.get(t) == 1:
            circles.append(stack[stack.index(t):] + [t])
        elif t not in state:
            visit(t, stack)
    stack.pop()
    state[m] = 2


for m in sorted(modules):
    if m not in state:
        visit(m, [])
for c in circles:
    print("import circle: " + " -> ".join(c))
print(f"{len(modules)} modules, {sum(map(len, edges.values()))} imports, {len(circles)} circles")
sys.exit(1 if circles else 0)
