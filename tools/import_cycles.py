"""Print the import cycles among vidstyle's modules, and its largest modules.

    python3 tools/import_cycles.py            # cycles, then the 15 largest modules
    python3 tools/import_cycles.py --top 30

Every import of a vidstyle module counts, wherever it sits: at the top of a module, inside a
function (an import moved into a function to dodge a cycle is still the cycle) or under
`if TYPE_CHECKING:`. Each cycle is printed as the group of modules that reach one another
(a strongly connected component), with every import inside the group: file, line, and
where the import sits. Exit status 1 when there is a cycle, so CI can hold the line.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "vidstyle"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    where: str  # "top", "function" or "type-checking"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((ROOT / PACKAGE).rglob("*.py"))}


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The vidstyle module `name` is, or is inside (``vidstyle.api.Stylizer`` -> api)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imported_names(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Dotted names an import statement reaches: ``from a import b`` may be module a.b."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:  # relative: from the module's own package upwards
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        head = ".".join(base + ([node.module] if node.module else []))
    else:
        head = node.module or ""
    return [f"{head}.{alias.name}" for alias in node.names] + [head]


def edges_of(module: str, path: Path, modules: dict[str, Path]) -> list[Edge]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[Edge] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = where
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                inner = "function"
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = "type-checking" if where == "top" else where
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                targets = set()
                names = imported_names(child, module, path.name == "__init__.py")
                for name in names:
                    target = resolve(name, modules) if name.startswith(PACKAGE) else None
                    if target is not None and target != module:
                        targets.add(target)
                # `from a import b`: b when it is a module, else a (not both).
                if isinstance(child, ast.ImportFrom) and len(targets) > 1:
                    head = resolve(names[-1], modules)
                    if any(t != head for t in targets):
                        targets.discard(head)
                found.extend(Edge(module, t, child.lineno, inner) for t in sorted(targets))
            visit(child, inner)

    visit(tree, "top")
    return found


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; the groups of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15, help="largest modules to list")
    args = parser.parse_args()
    modules = find_modules()
    edges = [e for name, path in modules.items() for e in edges_of(name, path, modules)]
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
    groups = strongly_connected(graph)
    inside = [e for e in edges if e.where != "top"]
    print(f"{len(modules)} modules, {len(edges)} imports of vidstyle modules "
          f"({len(inside)} inside functions or TYPE_CHECKING)")
    print(f"\nimport cycles: {len(groups) or 'none'}")
    for group in groups:
        print(f"\n  {' <-> '.join(group)}")
        for edge in edges:
            if edge.source in group and edge.target in group:
                print(f"    {modules[edge.source].relative_to(ROOT)}:{edge.line}  "
                      f"{edge.source} -> {edge.target}  ({edge.where})")
    sizes = sorted(((len(p.read_text().splitlines()), p) for p in modules.values()),
                   reverse=True)
    print("\nlargest modules (lines):")
    for lines, path in sizes[: args.top]:
        print(f"  {lines:5d}  {path.relative_to(ROOT)}")
    return 1 if groups else 0


if __name__ == "__main__":
    sys.exit(main())
