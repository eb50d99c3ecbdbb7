"""Name checks shared by the model configs: a bad name is a ConfigError naming the key."""

from __future__ import annotations

from collections.abc import Collection

from unmask.errors import ConfigError


def check_choice(key: str, value: str, choices: Collection[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ConfigError naming ``key``."""
    if value not in choices:
        raise ConfigError(f"{key}: unknown {value!r}; choose one of {', '.join(sorted(choices))}")
    return value


def check_int(key: str, value: int, minimum: int) -> int:
    """Return ``value`` if it is an int >= ``minimum``, else raise ConfigError naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key}: must be an integer >= {minimum}, got {value!r}")
    return value
