"""Wiring: the Typer app, global options, and how errors become exit codes.

Exit codes: 0 success; 1 some inputs failed (the others were done); 2 bad usage or an
unusable input. A :class:`~tokquant.errors.TokquantError` prints one line on stderr; with
``--debug`` it, and any other exception, shows its traceback.
"""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer
from typer.core import TyperArgument

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer depends on click itself
    from click import exceptions as click_errors

from tokquant import __version__
from tokquant.cli._output import FLAG_SOURCE, as_flags
from tokquant.cli.audit import audit
from tokquant.cli.compare import compare
from tokquant.cli.decode import decode
from tokquant.cli.encode import encode
from tokquant.cli.evaluate import eval_
from tokquant.cli.export import export
from tokquant.cli.import_ import import_checkpoint
from tokquant.cli.info import info
from tokquant.cli.merge import merge
from tokquant.cli.stats import stats
from tokquant.cli.train import train
from tokquant.cli.train_vocoder import train_vocoder
from tokquant.cli.verify import verify
from tokquant.errors import INTERRUPTED, TokquantError


def _argument_type(self: TyperArgument, ctx: object) -> str | None:
    """An argument that takes several paths shows ``<path>...`` in help, as its
    ``--options`` show ``<path>`` (typer writes the annotation: ``<list[Path]>``)."""
    shown = _typer_argument_type(self, ctx)
    return shown.replace("<list[Path]>", "<path>...") if shown else shown


_typer_argument_type = TyperArgument.display_type_rich
TyperArgument.display_type_rich = _argument_type  # type: ignore[method-assign]

app = typer.Typer(
    name="tokquant",
    help="Turn audio and feature sequences into discrete tokens (BSQ, LFQ, RVQ, FSQ) and back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tokquant {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", metavar="", help="Show tracebacks.")] = False,
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", metavar="", callback=_version, is_eager=True, help="Print the version."
        ),
    ] = None,
) -> None:
    """Global options."""
    _run.debug = debug


for command in (train, encode, decode, stats, audit, export, info, verify, merge):
    app.command()(command)
app.command(name="import")(import_checkpoint)
app.command(name="train-vocoder")(train_vocoder)
app.command(name="eval")(eval_)
app.command()(compare)


def _flags() -> dict[str, str]:
    """Parameter name -> flag, for :func:`~tokquant.cli._output.as_flags`: a command's
    parameters are named as its job's fields, so the library's names map one to one."""
    flags: dict[str, str] = {}
    for cmd in typer.main.get_command(app).commands.values():  # type: ignore[attr-defined]
        for param in cmd.params:
            long = [o for o in getattr(param, "opts", ()) if o.startswith("--")]
            if long and param.name:
                flags.setdefault(param.name, long[0])
    return flags


FLAG_SOURCE.append(_flags)


class Interrupted(BaseException):
    """Ctrl-C. A BaseException, so no ``except Exception`` on the way up can swallow it
    (and click, which turns KeyboardInterrupt into "Aborted!" with exit 1, lets it pass)."""


def _on_sigint(signum: int, frame: object) -> None:
    raise Interrupted


def _caused_by_interrupt(exc: BaseException) -> bool:
    """Whether a Ctrl-C is where ``exc`` came from: a SIGINT that lands while a module
    defines a dataclass comes back as ``RuntimeError: Error calling __set_name__``."""
    seen = exc.__cause__ or exc.__context__
    while seen is not None:
        if isinstance(seen, (Interrupted, KeyboardInterrupt)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _Run:
    """What the global options asked for, set by Typer's callback for ``main`` to read
    when an error comes back up (a new run starts without it)."""

    debug = False


_run = _Run()


#: Commands whose work needs torch: it is imported before their work starts, while a
#: Ctrl-C still ends the process at once (see :mod:`tokquant.cli.entry`).
_TORCH_COMMANDS = {"train", "encode", "decode", "stats", "audit", "eval", "train-vocoder",
                   "import", "export"}  # fmt: skip


def _import_torch(argv: list[str], interrupt: object) -> None:
    """``import torch`` under ``interrupt`` (a handler that exits) when ``argv`` runs a
    command that needs it: never for ``--help``, so help stays torch-free."""
    if interrupt is None or not argv or argv[0] not in _TORCH_COMMANDS:
        return
    if {"-h", "--help"} & set(argv):
        return
    previous = signal.signal(signal.SIGINT, interrupt)  # type: ignore[arg-type]
    try:
        # start-up time: torch
        import torch  # noqa: F401 - torch-free start-up: only for commands that need it
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None, *, interrupt: object = None) -> None:
    """Run the CLI on ``argv``; ``interrupt`` is the SIGINT handler that ends the process
    at once (the entry point's), used while torch imports."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _run.debug = False

    _import_torch(argv, interrupt)
    try:
        previous = signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        code = app(args=argv, prog_name="tokquant", standalone_mode=False)
    except click_errors.UsageError as exc:
        if not argv or isinstance(exc, click_errors.NoArgsIsHelpError):
            typer.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
            sys.exit(2)
        command = (
            f" {exc.ctx.command_path.split(' ', 1)[1]}"
            if exc.ctx and " " in exc.ctx.command_path
            else ""
        )
        typer.echo(f"error: {exc.format_message()} (see tokquant{command} --help)", err=True)
        sys.exit(2)
    except typer.Abort:
        raise Interrupted from None
    except TokquantError as exc:
        if _run.debug:
            raise
        typer.echo(f"error: {as_flags(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except (Interrupted, KeyboardInterrupt):
        # Outputs are written whole or not at all: what finished is kept, nothing partial.
        typer.echo(INTERRUPTED, err=True)
        sys.exit(130)
    except RuntimeError as exc:  # Python wraps one raised inside a class's definition
        if not _caused_by_interrupt(exc):
            raise
        typer.echo(INTERRUPTED, err=True)
        sys.exit(130)
    else:
        if isinstance(code, int) and code:
            sys.exit(code)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
