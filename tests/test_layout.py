"""The package's shape: no import cycles, short functions, params that match constructors."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import pytest

import tokquant
from tokquant.quantizers import QUANTIZERS
from tokquant.quantizers.params import FAMILY_PARAMS

PACKAGE = Path(tokquant.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Lines inside ``if TYPE_CHECKING:`` blocks (never executed)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    """tokquant module -> tokquant modules it imports anywhere (function bodies too),
    with each imported module's parent packages (importing ``a.b.c`` runs ``a.b``)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skip = _type_checking_lines(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                    + ([base] if base else []))  # fmt: skip
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in modules else base)
        edges = set()
        for target in targets:
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in modules and prefix != name and not name.startswith(prefix + "."):
                    edges.add(prefix)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert (
        "tokquant.jobs.encode" in graph
        and "tokquant.formats.corpus" in graph["tokquant.jobs.encode"]
    )
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_function_in_the_package_is_over_80_lines():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > 80:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.name} ({lines} lines)")
    assert not long, long


def test_no_cli_command_is_over_60_lines():
    """A command parses and calls the library; anything longer belongs in a job."""
    from tokquant.cli.app import app

    long = []
    for command in app.registered_commands:
        source = inspect.getsource(command.callback)
        lines = len(source.rstrip("\n").splitlines())
        if lines > 60:
            long.append(f"{command.callback.__name__} ({lines} lines)")
    assert len(app.registered_commands) == 10 and not long, long


@pytest.mark.parametrize("family", sorted(FAMILY_PARAMS))
def test_each_family_params_are_its_constructor_arguments(family):
    fields = [f.name for f in dataclasses.fields(FAMILY_PARAMS[family])]
    signature = inspect.signature(QUANTIZERS[family].__init__).parameters
    runtime_only = {"self", "chunk_elements", "search"}  # not part of the model
    assert set(signature) - runtime_only == set(fields)


def test_the_cli_reaches_the_library_only_through_jobs():
    """A command builds a job request and prints its report (issue 31): ``tokquant.cli``
    imports nothing of tokquant but ``tokquant.jobs``, its errors and its choices."""
    allowed = ("tokquant.cli", "tokquant.jobs", "tokquant.errors", "tokquant.choices")
    reached = {target for name, targets in import_graph().items() if name.startswith("tokquant.cli")
               for target in targets}  # fmt: skip
    outside = sorted(t for t in reached if t != "tokquant" and not t.startswith(allowed))
    assert "tokquant.jobs" in reached and not outside, outside
