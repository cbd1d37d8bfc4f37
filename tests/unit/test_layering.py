"""The design's layering rules, checked by walking every module's imports."""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ocrvault"


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def package_of(path: Path) -> str:
    parts = path.relative_to(SRC).parts
    return parts[0] if len(parts) > 1 else path.stem


MODULES = sorted(SRC.rglob("*.py"))

# (imported prefix, packages that may import it)
RULES = [
    ("fastapi", {"api"}),
    ("starlette", {"api"}),
    ("python_multipart", {"api"}),
    ("cryptography.hazmat", {"crypto"}),
    ("sqlalchemy", {"store"}),
    ("alembic", {"store"}),
    ("tesserocr", {"engines"}),
    ("ocrvault.store", {"store", "jobs", "access", "retention", "runtime", "cli", "audit"}),
    # ORM rows stay in store/: repositories hand out frozen records (store/records.py).
    # audit/ still reads AuditEntryRow; the per-tenant audit chain work (issue 13) moves it
    # behind the audit repository, and then "audit" leaves this set.
    ("ocrvault.store.tables", {"store", "audit"}),
    ("ocrvault.api", {"api", "cli"}),
]


@pytest.mark.parametrize(("prefix", "allowed"), RULES, ids=[rule[0] for rule in RULES])
def test_only_allowed_packages_import(prefix: str, allowed: set[str]) -> None:
    crossings = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in MODULES
        for name in imports_of(path)
        if (name == prefix or name.startswith(prefix + ".")) and package_of(path) not in allowed
    ]
    assert not crossings


def test_engines_and_ingest_never_touch_storage_or_keys() -> None:
    for path in MODULES:
        if package_of(path) in {"engines", "ingest", "render"}:
            banned = {n for n in imports_of(path)
                      if n.startswith(("ocrvault.store", "ocrvault.crypto", "ocrvault.jobs"))}
            assert not banned, f"{path.relative_to(SRC)} imports {banned}"


def package_imports() -> dict[str, set[str]]:
    """Which packages of ocrvault each package imports (a local import counts too)."""
    graph: dict[str, set[str]] = {}
    for path in MODULES:
        here = package_of(path)
        graph.setdefault(here, set()).update(
            name.split(".")[1] for name in imports_of(path)
            if name.startswith("ocrvault.") and name.split(".")[1] != here)
    return graph


def shortest_loop(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """The shortest chain of imports from ``start`` back to itself, if there is one."""
    queue, seen = deque([[start]]), {start}
    while queue:
        path = queue.popleft()
        for target in sorted(graph.get(path[-1], set())):
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                queue.append([*path, target])
    return None


def test_no_import_cycle_between_packages() -> None:
    """Each package stands on those it imports: a loop means one of them holds code that
    belongs to the other, or vocabulary that belongs below both."""
    graph = package_imports()
    loops = sorted({frozenset(loop): " -> ".join(loop)
                    for package in sorted(graph) if (loop := shortest_loop(graph, package))
                    }.values())
    assert not loops, f"import cycles between packages: {loops}"


def test_routes_name_their_services_not_the_runtime() -> None:
    """A route depends on the service it calls (api/deps.py); reaching through the
    runtime (``request.app.state.runtime.jobs``) hides what it uses."""
    reaching = sorted(
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path in MODULES if path.parent == SRC / "api" / "routes"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if (isinstance(node, ast.Attribute) and node.attr == "runtime")
        or (isinstance(node, ast.ImportFrom) and node.module == "ocrvault.runtime")
    )
    assert not reaching
