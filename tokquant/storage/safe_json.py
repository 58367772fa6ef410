"""JSON from files users hand us: parsed whole or refused in one line, never a crash.

Python's ``json`` accepts things tokquant's files never hold and that break later, far
from the file that caused them: nesting deep enough to exhaust the stack (a
``RecursionError`` in the parser, or later in whatever walks the value), integers longer
than Python converts (4,300 digits), ``NaN``/``Infinity`` and numbers such as ``1e400``
that overflow to infinity, and lone UTF-16 surrogates (``"\\ud800"``) that only fail when
the text is encoded again, in a worker, after other files were written. :func:`loads`
refuses all of them up front with a :class:`~tokquant.errors.FormatError` naming the file.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from tokquant.errors import FormatError

#: Deeper than any file tokquant writes (a manifest is 4 levels), shallow enough for
#: every recursive consumer (repr, json.dumps, pyarrow) to be safe.
MAX_DEPTH = 64
#: Python refuses longer integer strings (``sys.get_int_max_str_digits``); say so first.
MAX_INT_DIGITS = 4300
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]", re.ASCII)


class _Refused(ValueError):
    """A value the parser met that tokquant refuses (raised from a parse hook)."""


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"a number out of range ({text[:20]})")
    return value


def _int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {len(text)} digits")
    return int(text)


def _constant(text: str) -> float:
    raise _Refused(f"{text}, which is no finite number")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"the key {key[:40]!r} twice in one object")
        out[key] = value
    return out


def loads(
    text: str | bytes, where: str, *, path_bytes: bool = False, unique_keys: bool = False
) -> Any:
    """Parse ``text``; a :class:`FormatError` ``where: ...`` for anything but plain JSON
    of finite numbers, valid Unicode and at most :data:`MAX_DEPTH` levels. ``path_bytes``
    allows the one kind of lone surrogate a file of ours holds: ``\udc80``-``\udcff``,
    how ``os.fsdecode`` spells a file-name byte that is not UTF-8 (a corpus manifest
    records its inputs' paths as they are). ``unique_keys`` refuses an object that gives
    a key twice (a config, where Python's ``json`` would silently keep the last)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{where}: JSON is not UTF-8") from None
    try:
        value = json.loads(
            text,
            parse_float=_float,
            parse_int=_int,
            parse_constant=_constant,
            object_pairs_hook=_unique if unique_keys else None,
        )
    except RecursionError:
        raise FormatError(f"{where}: JSON nested too deep (over {MAX_DEPTH} levels)") from None
    except _Refused as exc:
        raise FormatError(f"{where}: JSON holds {exc}") from None
    except ValueError as exc:  # JSONDecodeError, and anything else the parser refuses
        reason = str(exc).splitlines()[0][:120] if str(exc) else "invalid"
        raise FormatError(f"{where}: not valid JSON ({reason})") from None
    _check(value, where, strings=_SURROGATE_ESCAPE.search(text) is not None, path_bytes=path_bytes)
    return value


def _check(value: Any, where: str, *, strings: bool, path_bytes: bool) -> None:
    """Depth, and (``strings``: the text escapes a surrogate) valid Unicode, walked with
    a stack rather than recursion."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            items: Any = node.values()
            if strings:
                for key in node:
                    _unicode(key, where, path_bytes)
        elif isinstance(node, list):
            items = node
        else:
            if strings and isinstance(node, str):
                _unicode(node, where, path_bytes)
            continue
        if depth > MAX_DEPTH:
            raise FormatError(f"{where}: JSON nested too deep (over {MAX_DEPTH} levels)")
        stack.extend(
            (item, depth + 1) for item in items if strings or isinstance(item, (dict, list))
        )


def _unicode(text: str, where: str, path_bytes: bool = False) -> None:
    try:
        text.encode("utf-8", "surrogateescape" if path_bytes else "strict")
    except UnicodeEncodeError:
        raise FormatError(
            f"{where}: JSON holds a lone surrogate (\\ud800-\\udfff), not text"
        ) from None


def is_text(value: object) -> bool:
    """``value`` is a string that encodes as UTF-8 (no lone surrogate)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
