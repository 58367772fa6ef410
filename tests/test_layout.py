"""The package's shape: no import cycles, short functions, params that match constructors."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
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
        "tokquant.engines.outputs" in graph
        and "tokquant.formats.corpus" in graph["tokquant.engines.outputs"]
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


def test_cli_commands_parse_build_run_and_print_in_under_30_lines():
    """A command is its options, one line each (each option's type and help are named
    once, in ``cli/_options`` or above the command), then at most 30 lines that build
    the job's request, run it and print (issue 31); anything longer belongs in a job."""
    from tokquant.cli.app import app

    long = []
    for command in app.registered_commands:
        fn = ast.parse(textwrap.dedent(inspect.getsource(command.callback))).body[0]
        params = len(fn.args.args)
        signature = fn.body[0].lineno - fn.lineno  # the def line to the docstring
        has_doc = isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant)
        body_start = fn.body[1].lineno if has_doc else fn.body[0].lineno
        body = fn.end_lineno - body_start + 1
        if signature > params + 2 or body > 30:
            long.append(f"{command.callback.__name__}: {params} options in {signature} "
                        f"lines, body {body} lines")  # fmt: skip
    assert len(app.registered_commands) == 12 and not long, long


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


def test_no_module_in_the_package_is_over_400_lines():
    long = [f"{p.relative_to(PACKAGE)} ({n})" for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400]  # fmt: skip
    assert not long, long


#: Flags of other programs that tokquant's advice names (``tar --hard-dereference``).
OTHER_PROGRAMS_FLAGS = {"--sparse", "--hard-dereference"}


def _message_strings(tree: ast.AST) -> list[str]:
    """Every string literal but docstrings (f-strings' literal parts included)."""
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }  # fmt: skip
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]  # fmt: skip


def test_messages_below_the_cli_name_parameters_not_flags():
    """The library says `levels` or `overwrite=True`; only the CLI says --levels (it maps
    them, tokquant.cli._output.as_flags), so a Python caller reads its own names."""
    import re

    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "cli":
            continue
        for text in _message_strings(ast.parse(path.read_text())):
            for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*", text):
                if flag not in OTHER_PROGRAMS_FLAGS:
                    found.append(f"{path.relative_to(PACKAGE)}: {flag} in {text[:60]!r}")
    assert not found, found


def test_the_cli_says_flags_where_the_library_names_parameters():
    from tokquant.cli._output import as_flags
    from tokquant.cli.app import main  # noqa: F401  (registers the commands' flags)

    assert as_flags("`levels` must be in [1, 8]") == "--levels must be in [1, 8]"
    assert as_flags("pass `overwrite=True` to replace it") == "pass --overwrite to replace it"
    assert as_flags("use `layout='delay'`") == "use --layout delay"
    assert as_flags("try `feature_layout='ct'`") == "try --feature-layout ct"
    assert as_flags("run `tokquant merge` then") == "run `tokquant merge` then"
    assert as_flags("a file named `levels.npy`") == "a file named `levels.npy`"


def test_no_job_imports_another_job():
    """Jobs share helpers (load, report, features, batcher), never each other: a token
    source is a source (``sources.tokens``), not something stats takes from decode. A
    job is its request (``jobs.X``) and its work (``runners.X``)."""
    jobs = ("encode", "decode", "stats", "audit", "evaluate", "train", "train_vocoder",
            "inspect", "export")  # fmt: skip
    graph = import_graph()

    def of(job: str, module: str) -> bool:
        return any(module == f"tokquant.{home}.{job}" or module.startswith(f"tokquant.{home}.{job}.")
                   for home in ("jobs", "runners"))  # fmt: skip

    sideways = []
    for job in jobs:
        for name in (n for n in graph if of(job, n)):
            sideways += [f"{name} -> {t}" for t in graph[name]
                         if any(of(other, t) for other in jobs if other != job)]  # fmt: skip
    assert "tokquant.sources.tokens" in graph["tokquant.runners.stats"] and not sideways, sideways


#: Files outside tokquant/storage that open, make or write paths themselves, and why
#: that is not a door: each is a path tokquant made, or a kernel file. Everything else
#: goes through storage: ``atomic_path`` (and ``OutputFolder``) for what it writes,
#: ``open_regular`` for what a stranger names.
OWN_FILES = {
    (
        "tokquant/formats/_safetensors.py",
        "open",
    ): "writes the temp path callers get from atomic_path",
    ("tokquant/formats/km.py", "open"): "reads the part files this export wrote in its own folder",
    ("tokquant/audio/ssl.py", "mkdir"): "torch hub's weight cache, not an output folder",
    ("tokquant/audio/ssl.py", "open"): "a download's temp file there, renamed once checked",
    ("tokquant/devices.py", "open"): "the kernel's cgroup CPU quota files",
}
_WRITES = {"mkdir", "makedirs", "write_text", "write_bytes"}


def file_doors(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, call)`` of each ``open(``, ``os.open(``, ``.mkdir(``, ``.makedirs(``,
    ``.write_text(`` and ``.write_bytes(`` whose path is not a temp path that an
    enclosing ``with atomic_path(...) as NAME`` yielded."""
    temps = {
        item.optional_vars.id
        for node in ast.walk(tree)
        if isinstance(node, ast.With)
        for item in node.items
        if isinstance(item.context_expr, ast.Call)
        and getattr(item.context_expr.func, "id", getattr(item.context_expr.func, "attr", ""))
        == "atomic_path"
        and isinstance(item.optional_vars, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func, target, name = node.func, None, None
        if isinstance(func, ast.Name) and func.id == "open":
            name, target = "open", node.args[0] if node.args else None
        elif (
            isinstance(func, ast.Attribute)
            and func.attr == "open"
            and getattr(func.value, "id", "") == "os"
        ):
            name, target = "open", node.args[0] if node.args else None
        elif isinstance(func, ast.Attribute) and func.attr in _WRITES:
            name, target = func.attr.replace("makedirs", "mkdir"), func.value
            name = "mkdir" if name == "mkdir" else "write"
        if name is None or (isinstance(target, ast.Name) and target.id in temps):
            continue
        found.append((node.lineno, name))
    return found


def test_every_file_door_goes_through_the_storage_helpers():
    """No module below the CLI opens, makes or writes a path but through ``storage``
    (``atomic_path``, ``OutputFolder``, ``open_regular``), so a new command cannot
    forget them: a new door fails here until it uses them (or is added to OWN_FILES
    with the reason its path is tokquant's own)."""
    stray = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        if rel.startswith("tokquant/storage/"):
            continue
        for line, name in file_doors(ast.parse(path.read_text())):
            if (rel, name) not in OWN_FILES:
                stray.append(f"{rel}:{line} {name}(")
    assert stray == [], stray


def test_the_door_scan_finds_what_it_looks_for():
    tree = ast.parse(
        "def f(p, q):\n"
        "    open(p, 'w')\n"
        "    q.mkdir()\n"
        "    p.write_text('x')\n"
        "    with atomic_path(p) as tmp, open(tmp, 'wb') as fh:\n"
        "        tmp.write_bytes(b'')\n"
    )
    assert file_doors(tree) == [(2, "open"), (3, "mkdir"), (4, "write")]
