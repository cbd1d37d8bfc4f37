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
    # Master keys in an HSM: only crypto/ talks to it.
    ("pkcs11", {"crypto"}),
    ("sqlalchemy", {"store"}),
    ("alembic", {"store"}),
    ("tesserocr", {"engines"}),
    ("ocrvault.store", {"store", "jobs", "access", "retention", "runtime", "cli", "audit",
                        "compose", "webhooks"}),
    # ORM rows stay in store/: repositories hand out frozen records (store/records.py).
    ("ocrvault.store.tables", {"store"}),
    ("ocrvault.api", {"api", "cli"}),
    # The compositions are built by the CLI (and the tests) only; the app is handed one.
    ("ocrvault.compose", {"compose", "runtime", "cli"}),
    ("ocrvault.runtime", {"cli"}),
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


def module_name(path: Path) -> str:
    parts = ("ocrvault", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


PATHS = {module_name(path): path for path in MODULES}


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def loaded_imports(path: Path) -> set[str]:
    """The modules importing ``path`` loads: its imports at module level (not those inside
    functions, which run only when called, nor those for type checkers), with submodules
    named in ``from package import module`` and the packages above each."""
    names: set[str] = set()
    pending = [n for n in ast.parse(path.read_text(), str(path)).body if not _is_type_checking(n)]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names
                         if f"{node.module}.{alias.name}" in PATHS)
        elif isinstance(node, ast.If | ast.Try):
            pending.extend(child for child in ast.iter_child_nodes(node)
                           if isinstance(child, ast.stmt))
    return {".".join(name.split(".")[:end]) for name in names
            for end in range(1, name.count(".") + 2)}


def import_closure(roots: list[str]) -> dict[str, str]:
    """Every module loaded by importing ``roots``, each with the module that imports it."""
    importer: dict[str, str] = {root: root for root in roots}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name not in PATHS:
            continue  # a third-party module: where its own imports lead is not ours to walk
        for imported in sorted(loaded_imports(PATHS[name])):
            if imported not in importer:
                importer[imported] = name
                pending.append(imported)
    return importer


def reached(roots: list[str], banned: tuple[str, ...]) -> dict[str, str]:
    """The banned modules that importing ``roots`` loads, each with its importer."""
    importer = import_closure(roots)
    return {name: importer[name] for name in sorted(importer)
            if any(name == prefix or name.startswith(prefix + ".") for prefix in banned)}


# What only a node that runs OCR (a worker, or role all) may load.
OCR_ONLY = ("ocrvault.engines.tesseract", "ocrvault.engines.rapidocr", "tesserocr",
            "onnxruntime", "rapidocr", "ocrvault.jobs.worker", "ocrvault.compose.worker",
            "ocrvault.runtime")
HTTP = ("fastapi", "starlette", "uvicorn", "ocrvault.api")


def test_the_api_role_loads_no_engine_and_no_worker() -> None:
    """Role api (its composition and the app with every route) never imports an engine's
    implementation, the worker, or the all-in-one runtime, even indirectly."""
    api_modules = [name for name in PATHS if name.startswith("ocrvault.api.")]
    assert not reached(["ocrvault.compose.api", *api_modules], OCR_ONLY)


def test_the_scheduler_role_loads_no_engine_and_no_http() -> None:
    assert not reached(["ocrvault.compose.scheduler"], (*OCR_ONLY, *HTTP))


def test_the_worker_role_loads_no_http() -> None:
    assert not reached(["ocrvault.compose.worker"], (*HTTP, "ocrvault.runtime"))


def test_the_closure_walk_finds_what_a_module_loads() -> None:
    """The walk itself: role all does load the engines' registry and the worker."""
    assert reached(["ocrvault.runtime"], ("ocrvault.jobs.worker", "ocrvault.engines.registry"))
