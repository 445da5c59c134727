"""The code's layout (docs/ARCHITECTURE.md, Layout): imports read with `ast`, no module imports run.

Backend floors: the commands (`cli`, `__main__`) -> `pipelines/` -> the stages (`io`, `geometry`, `optim`, `post`,
`points`, `raster`, `topology`) -> `cameras/`, `mesh/` -> `runtime/`. Add-on floors: panels -> operators -> helpers
(runner, gather, import, run session) -> pure maths. Imports inside functions count; imports under `if TYPE_CHECKING:` do not.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKEND, ADDON = "backend", "blender_addon"
STAGES = ("io", "geometry", "optim", "post", "points", "raster", "topology")


def module_name(path: Path) -> str:
    """Dotted module name of a .py file under ROOT (a package's __init__.py names the package)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    """Every module of the backend and the add-on, by dotted name."""
    return {module_name(p): p for top in (BACKEND, ADDON) for p in sorted((ROOT / top).rglob("*.py"))
            if "__pycache__" not in p.parts}


def _is_type_checking(node: ast.If) -> bool:
    """Whether an `if` tests TYPE_CHECKING (typing.TYPE_CHECKING or the bare name)."""
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Import statements anywhere in the tree (functions included), except under `if TYPE_CHECKING:`."""
    found: list = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _own(name: str) -> str:
    """The repository module a dotted name means: the add-on's bundled `.backend` is the repository's backend."""
    prefix = f"{ADDON}.{BACKEND}"
    return BACKEND + name[len(prefix):] if name == prefix or name.startswith(prefix + ".") else name


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The backend and add-on modules that module `name` imports (a package's __init__ only when named itself)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            base = _own(base)
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            targets = subs if len(subs) == len(node.names) else subs + [base]
        out.update(t for t in map(_own, targets) if t in modules and t != name)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports, over the backend and the add-on."""
    modules = all_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def backend_package(name: str) -> str | None:
    """The backend sub-package a backend module belongs to (None for top-level modules such as cli)."""
    parts = name.split(".")
    if parts[0] != BACKEND or len(parts) < 2:
        return None
    path = ROOT.joinpath(*parts[:2])
    return parts[1] if path.is_dir() else None


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Backend sub-package -> the other sub-packages its modules import."""
    out: dict[str, set[str]] = {}
    for src, targets in graph.items():
        a = backend_package(src)
        if a is None:
            continue
        out.setdefault(a, set()).update(b for b in map(backend_package, targets) if b is not None and b != a)
    return out


def test_the_graph_sees_real_imports() -> None:
    """The reader finds known edges (absolute, relative, lazy and the add-on's bundled backend)."""
    graph = import_graph()
    assert "backend.runtime.errors" in graph["backend.runtime.protocol"]
    assert "backend.mesh.winding" in graph["backend.mesh.interior"]
    assert "backend.mesh.align" in graph["backend.mesh.metrics"]
    assert "backend.pipelines.reconstruct" in graph["backend.cli"]
    assert {"backend.mesh.fairing", "backend.mesh.interior"} <= graph["blender_addon.cleanup_steps"]
    assert "blender_addon.runner" in graph["blender_addon.ops_reconstruct"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_between_modules() -> None:
    """No module reaches itself through imports (backend and add-on)."""
    assert cycles(import_graph()) == []


def test_no_import_circle_between_backend_packages() -> None:
    """The backend's sub-packages form floors: no package reaches itself (e.g. io <-> cameras)."""
    assert cycles(package_graph(import_graph())) == []


def test_only_the_commands_import_pipelines() -> None:
    """Pipelines sit one floor above the stages: no stage (nor cameras/, mesh/, runtime/) imports them."""
    graph = import_graph()
    assert {backend_package(m) for m in graph} >= set(STAGES)
    bad = [(src, dst) for src, targets in graph.items()
           if backend_package(src) not in (None, "pipelines") and src.startswith(BACKEND + ".")
           for dst in targets if backend_package(dst) == "pipelines"]
    assert bad == []


def test_runtime_imports_nothing_else_of_backend() -> None:
    """runtime/ is process plumbing at the bottom: it imports only itself."""
    bad = [(src, dst) for src, targets in import_graph().items() if backend_package(src) == "runtime"
           for dst in targets if backend_package(dst) != "runtime"]
    assert bad == []


def test_addon_helpers_never_import_operators_or_panels() -> None:
    """Add-on floors: a helper (gather, import, runner, run session, maths) imports no ops_*/panel* module,
    and an operator imports no panel."""
    def kind(name: str) -> str:
        leaf = name.rpartition(".")[2]
        return "panel" if leaf.startswith("panel") else "ops" if leaf.startswith("ops_") else "helper"

    graph = import_graph()
    bad = [(src, dst) for src, targets in graph.items() if src.startswith(ADDON + ".")
           for dst in targets if dst.startswith(ADDON + ".")
           and (kind(src), kind(dst)) in {("helper", "ops"), ("helper", "panel"), ("ops", "panel")}]
    assert bad == []
