"""The package reads as its folders say: no import cycle, domains import no command, loops no domain, reporting
nothing that runs, short files."""

from __future__ import annotations

import ast
from pathlib import Path

import seal

ROOT = Path(seal.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every seal module -> the seal modules it imports anywhere (module level or inside a function)."""
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seal"):
                for alias in node.names:  # `from seal.engines import make_engine` is seal.engines
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("seal")}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_no_import_cycle():
    graph = imports()
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_layers_import_only_downwards():
    graph = imports()
    for name, targets in graph.items():
        if name.startswith("seal.domains"):
            assert not any(t.startswith(("seal.commands", "seal.cli")) for t in targets), f"{name} imports a command"
        if name.startswith("seal.loops"):
            concrete = [t for t in targets if t.startswith("seal.domains") and t != "seal.domains.base"]
            assert not concrete, f"{name} imports a domain ({concrete}); loops know only seal.domains.base"
        if name.startswith("seal.engines"):
            assert not any(t.startswith(("seal.domains", "seal.loops", "seal.commands")) for t in targets), name
        if name.startswith("seal.executors"):  # run an engine's work; know no loop, command or concrete domain
            assert not any(t.startswith(("seal.loops", "seal.commands")) or
                           (t.startswith("seal.domains") and t != "seal.domains.base") for t in targets), name
        if name.startswith("seal.backends"):  # decode text; know no engine, loop, domain or command
            assert not any(t.startswith(("seal.engines", "seal.loops", "seal.domains", "seal.commands")) for t in targets), name
        if name.startswith("seal.reporting"):  # reads run directories; trains, samples and runs nothing
            assert not any(t.startswith(("seal.engines", "seal.loops", "seal.commands")) for t in targets), name


def test_the_folders_show_the_architecture():
    assert {p.name for p in ROOT.iterdir() if p.is_dir() and p.name != "__pycache__"} == \
        {"engines", "executors", "loops", "domains", "commands", "reporting", "backends"}
    for path in ROOT.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines"
