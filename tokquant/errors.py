"""One error hierarchy for everything tokquant reports to a user.

The CLI turns any ``TokquantError`` into a one-line message and an exit code; anything
else is a bug and keeps its traceback. Library code raises the plain ``ValueError`` /
``TypeError`` for bad arguments (what PyTorch users expect), and these classes for bad
files, configs and environments.
"""

from __future__ import annotations

#: What an interrupted command says (one line), whenever the interrupt came.
INTERRUPTED = "interrupted: finished outputs are kept; run the same command to continue"


class TokquantError(Exception):
    """A problem the user can fix; its message is one line and names the culprit."""

    exit_code: int = 2


class ConfigError(TokquantError, ValueError):
    """A config key is unknown or its value is out of range."""


class FormatError(TokquantError, ValueError):
    """A file is not what its extension or header claims (bad magic, version, tensors)."""


class InputError(TokquantError, ValueError):
    """An input file cannot be used: missing, empty, wrong shape, NaN, wrong checkpoint."""


class DeviceError(TokquantError, ValueError, RuntimeError):
    """The requested device does not exist on this machine (a bad argument, so a
    ``ValueError`` as the API promises, and an environment's limit)."""


class OutputError(TokquantError, OSError):
    """An output cannot be written: exists without --overwrite, unwritable, disk full."""


class TrainingError(TokquantError, ArithmeticError):
    """Training cannot go on (the loss stopped being finite); nothing was written."""


class OutputNameError(OutputError):
    """One output's path cannot be created (a file stands where its folder goes, a name
    over the system's limits, a FIFO where it goes): that input fails alone, the run
    goes on."""
