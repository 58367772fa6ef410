"""The package's shape: no import cycles, short functions, params that match constructors."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
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
    once, in ``cli/_options`` or above the command; its default is its request's), then
    the one statement that builds the job's request, then at most 30 lines that run it
    and print (issue 31); anything longer belongs in a job."""
    from tokquant.cli.app import app

    long = []
    for command in app.registered_commands:
        fn = ast.parse(textwrap.dedent(inspect.getsource(command.callback))).body[0]
        params = len(fn.args.args)
        signature = fn.body[0].lineno - fn.lineno  # the def line to the docstring
        has_doc = isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant)
        body = fn.body[1:] if has_doc else fn.body
        building = sum(s.end_lineno - s.lineno + 1 for s in body if _builds_request(s))
        lines = body[-1].end_lineno - body[0].lineno + 1 - building
        if signature > params + 2 or lines > 30:
            long.append(f"{command.callback.__name__}: {params} options in {signature} "
                        f"lines, body {lines} lines")  # fmt: skip
    assert len(app.registered_commands) == 13 and not long, long


def _builds_request(statement: ast.stmt) -> bool:
    """``job = XJob(...)``: the statement that builds a command's request."""
    return (
        isinstance(statement, ast.Assign)
        and isinstance(statement.value, ast.Call)
        and getattr(statement.value.func, "id", "").endswith("Job")
    )


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
            "inspect", "import_peer", "export")  # fmt: skip
    graph = import_graph()

    def of(job: str, module: str) -> bool:
        return any(module == f"tokquant.{home}.{job}" or module.startswith(f"tokquant.{home}.{job}.")
                   for home in ("jobs", "runners"))  # fmt: skip

    #: compare is made of whole jobs, run as a user would run them: their requests only
    composed = {"tokquant.runners.compare": {f"tokquant.jobs.{j}" for j in
                                             ("encode", "decode", "evaluate", "stats")}}  # fmt: skip
    sideways = []
    for job in (*jobs, "compare"):
        for name in (n for n in graph if of(job, n)):
            sideways += [f"{name} -> {t}" for t in graph[name]
                         if any(of(other, t) for other in jobs if other != job)
                         and t not in composed.get(name, ())]  # fmt: skip
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


# The house (issue 38) ------------------------------------------------------------------------

#: What a function-level import must say (on its line, or the comment line above its block).
_WHY = ("start-up time", "optional extra")


def function_level_imports(tree: ast.AST, source: str) -> list[tuple[int, str]]:
    """``(line, problem)`` for each import inside a function that says neither why (start-up
    time or an optional extra) nor differs from what the file imports at its top."""
    lines = source.splitlines()
    skip = _type_checking_lines(tree)
    top = {
        ast.unparse(n)
        for n in getattr(tree, "body", [])
        if isinstance(n, (ast.Import, ast.ImportFrom))
    }
    top_names = {(getattr(n, "module", None), a.name) for n in getattr(tree, "body", [])
                 if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}  # fmt: skip
    problems = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.lineno in skip:
                continue
            if ast.unparse(node) in top or any(
                (getattr(node, "module", None), a.name) in top_names for a in node.names
            ):
                problems.append((node.lineno, "repeats a top-level import"))
                continue
            said = any(w in line for line in lines[node.lineno - 1 : node.end_lineno] for w in _WHY)
            above = node.lineno - 2
            while not said and above >= 0:
                text = lines[above].strip()
                if text.startswith("#"):  # a comment above the block, of one or more lines
                    while not said and above >= 0 and lines[above].strip().startswith("#"):
                        said = any(w in lines[above] for w in _WHY)
                        above -= 1
                    break
                if not text.startswith(("import ", "from ", ")")) and not text.endswith(","):
                    break
                above -= 1
            if not said:
                problems.append((node.lineno, "says neither start-up time nor optional extra"))
    return problems


def test_function_level_imports_are_for_start_up_time_or_an_optional_extra():
    """An import inside a function is there to keep a light module light (``tokquant
    --help``, a request read by the CLI) or to reach an optional extra, and says which;
    anything else belongs at the top of its file (issue 38)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        for line, problem in function_level_imports(ast.parse(source), source):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{line} {problem}")
    assert found == [], found


def test_the_import_rule_finds_what_it_looks_for():
    source = (
        "import os\n"
        "def f():\n"
        "    import os\n"
        "    import json\n"
        "    # start-up time: torch\n"
        "    import torch\n"
        "    import numpy  # optional extra: numpy\n"
    )
    assert function_level_imports(ast.parse(source), source) == [
        (3, "repeats a top-level import"),
        (4, "says neither start-up time nor optional extra"),
    ]


def test_the_package_root_holds_at_most_8_modules():
    """The root keeps the public API, errors, checks, choices and the CLI entry; each
    model and each kind of work has its package (issue 38)."""
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= 8, root


def test_formats_know_bytes_only():
    """``formats/`` reads and writes bytes: it imports no model, decoder, engine or job
    (the tokenizer and the decoders load and save themselves through it)."""
    above = ("tokquant.tokenizer", "tokquant.quantizers", "tokquant.decoders", "tokquant.audio",
             "tokquant.jobs", "tokquant.runners", "tokquant.engines", "tokquant.api",
             "tokquant.cli", "tokquant.sources")  # fmt: skip
    graph = import_graph()
    reached = sorted(f"{name} -> {t}" for name, targets in graph.items()
                     if name.startswith("tokquant.formats") for t in targets
                     if t.startswith(above))  # fmt: skip
    assert reached == [], reached


def test_no_job_imports_ray_and_no_engine_imports_the_job():
    """Ray's code is the Ray engine's (``engines/ray.py``); the encode job builds a plan
    and an engine runs it without importing the job back (issue 38)."""
    ray_users, backwards = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                 for a in n.names} | {(n.module or "").split(".")[0] for n in ast.walk(tree)
                                      if isinstance(n, ast.ImportFrom) and not n.level}  # fmt: skip
        rel = path.relative_to(PACKAGE.parent).as_posix()
        if "ray" in names:
            ray_users.append(rel)
    graph = import_graph()
    backwards = [f"{n} -> {t}" for n, ts in graph.items() if n.startswith("tokquant.engines")
                 for t in ts if t.startswith("tokquant.jobs.encode")]  # fmt: skip
    assert ray_users == ["tokquant/engines/ray.py"] and backwards == [], (ray_users, backwards)


def _request_of(command) -> type:
    """The request class a command builds (``job = XJob(...)``, or ``XJob(...).run()``)."""
    import tokquant.jobs as jobs

    fn = ast.parse(textwrap.dedent(inspect.getsource(command.callback))).body[0]
    names = {n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name) and n.func.id.endswith("Job")}  # fmt: skip
    assert len(names) == 1, (command.callback.__name__, names)
    return getattr(jobs, names.pop())


def test_every_cli_default_is_its_requests_and_written_once():
    """Each option that is a field of the command's request takes its default from the
    request (``= EncodeJob.shard_size``, or the choice of it): one definition of each
    default, the CLI's help showing the library's (issue 38)."""
    from tokquant.cli.app import app

    wrong, checked = [], 0
    for command in app.registered_commands:
        job = _request_of(command)
        fields = {f.name: f for f in dataclasses.fields(job)}
        fn = ast.parse(textwrap.dedent(inspect.getsource(command.callback))).body[0]
        args = fn.args.args
        defaults = dict(zip([a.arg for a in args][len(args) - len(fn.args.defaults):],
                            fn.args.defaults, strict=True))  # fmt: skip
        signature = inspect.signature(command.callback).parameters
        for name, node in defaults.items():
            field = fields.get(name)
            if field is None or field.default is dataclasses.MISSING:
                continue  # a CLI-only option (--json), or a required field (data)
            text = ast.unparse(node)
            if not re.fullmatch(rf"(\w+\()?{job.__name__}\.{name}\)?", text):
                wrong.append(f"{command.callback.__name__} {name} = {text}")
            value = signature[name].default
            value = getattr(value, "value", value)
            if (list(value) if isinstance(value, tuple) else value) != (
                list(field.default) if isinstance(field.default, tuple) else field.default
            ):
                wrong.append(f"{command.callback.__name__} {name}: {value!r} != {field.default!r}")
            checked += 1
    assert checked > 80 and wrong == [], wrong


def test_requests_and_the_cli_are_read_without_torch_or_numpy():
    """Every request module (and the CLI, which takes its defaults from them) imports
    neither torch nor numpy: ``tokquant --help`` and building a request stay fast."""
    import subprocess
    import sys

    code = (
        "import sys, tokquant.cli.app, tokquant.jobs as j\n"
        "for name in j.__all__: getattr(j, name) if name.endswith('Job') else None\n"
        "print(sorted(m for m in ('torch', 'numpy', 'torchaudio') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
