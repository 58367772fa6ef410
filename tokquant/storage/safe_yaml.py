"""A config file's YAML, read strictly: UTF-8 text, no key given twice (YAML keeps the
last silently), safe types only, and one-line errors for the rest."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from tokquant.checks import shown
from tokquant.errors import ConfigError


def load_yaml(path: Path, raw: bytes) -> Any:
    """A config file's YAML, or a one-line ConfigError: text that is not UTF-8, invalid
    YAML, a key given twice (YAML would silently keep the last), nesting or numbers
    that Python cannot hold."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 text (byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_strict_loader())  # a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} is not valid YAML") from None
    except RecursionError:
        raise ConfigError(f"{path}: is nested too deep to be a config") from None
    except ValueError as exc:  # an integer past Python's 4,300-digit conversion limit
        raise ConfigError(f"{path}: holds a value Python cannot read ({str(exc)[:80]})") from None


@functools.cache
def _strict_loader() -> type:
    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, str | int | float | bool) and key in seen:
                    raise _DuplicateKey(
                        f"line {key_node.start_mark.line + 1}: key {shown(key)} is given twice "
                        f"(first on line {seen[key] + 1})"
                    )
                if isinstance(key, str | int | float | bool):
                    seen[key] = key_node.start_mark.line
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


class _DuplicateKey(Exception):
    """A mapping key given twice in a config file."""
