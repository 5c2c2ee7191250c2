"""Config loading: TOML files checked when loaded, with errors that name file, key and expectation.

Every config reader in kilnworks (plant model, agent, simulator scenarios stay separate) goes
through :class:`Table`, so a broken file always fails the same way::

    plant.toml: enterprise[2].site[0].line[1].asset[3].zones: expected an integer in [1, 64], got -1

Validate early, connect late: nothing here touches the network.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING = object()


class ConfigError(ValueError):
    """A config file that cannot be used. ``str()`` reads ``file: key: what was expected``."""

    def __init__(self, file: str, key: str, expected: str) -> None:
        self.file = file
        self.key = key
        self.expected = expected
        super().__init__(f"{file}: {key or '<top>'}: {expected}")


def load_toml(path: str | Path) -> Table:
    """Read a TOML file into a :class:`Table`; syntax errors become :class:`ConfigError`."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", f"expected UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
    return Table(data, str(path), "")


def parse_toml(text: str, name: str = "<string>") -> Table:
    """Like :func:`load_toml` for text already in memory (tests, embedded samples)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, "", f"not valid TOML: {exc}") from None
    return Table(data, name, "")


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Table:
    """A TOML table that knows where it came from, with typed getters that raise ConfigError.

    Unknown keys are an error too (``check_keys``): a misspelt ``sampling_intervall_ms`` should
    fail loudly rather than silently fall back to a default.
    """

    def __init__(self, data: dict[str, Any], file: str, prefix: str) -> None:
        self.data = data
        self.file = file
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, expected: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), expected)

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def _get(self, name: str, default: Any) -> Any:
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise self.error(name, "required key is missing")
        return default

    def str(self, name: str, default: Any = _MISSING, *, choices: tuple[str, ...] = ()) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str) or not value:
            raise self.error(name, f"expected a non-empty string, got {_describe(value)}")
        if choices and value not in choices:
            raise self.error(name, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def int(
        self, name: str, default: Any = _MISSING, *, min: int | None = None, max: int | None = None
    ) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(name, f"expected an integer, got {_describe(value)}")
        if (min is not None and value < min) or (max is not None and value > max):
            raise self.error(name, f"expected an integer in [{min}, {max}], got {value}")
        return value

    def float(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        min: float | None = None,
        max: float | None = None,
    ) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.error(name, f"expected a number, got {_describe(value)}")
        value = float(value)
        if value != value:
            raise self.error(name, "expected a number, got nan")
        if (min is not None and value < min) or (max is not None and value > max):
            raise self.error(name, f"expected a number in [{min}, {max}], got {value}")
        return value

    def bool(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {_describe(value)}")
        return value

    def list_of_str(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(name, f"expected a list of strings, got {_describe(value)}")
        return list(value)

    def table(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, dict):
            raise self.error(name, f"expected a table, got {_describe(value)}")
        return Table(value, self.file, self.key(name))

    def tables(self, name: str, *, required: bool = False) -> Iterator[Table]:
        """The array of tables ``[[name]]`` (empty when absent unless ``required``)."""
        value = self._get(name, _MISSING if required else [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(
                name, f"expected an array of tables [[{name}]], got {_describe(value)}"
            )
        for i, item in enumerate(value):
            yield Table(item, self.file, f"{self.key(name)}[{i}]")

    def check_keys(self, *allowed: str) -> None:
        """Reject keys this table does not know (catches typos)."""
        for name in self.data:
            if name not in allowed:
                raise self.error(name, f"unknown key (expected one of: {', '.join(allowed)})")
