"""Settings declared once: each a dataclass field with its variable, default, type and bounds,
read from the environment by one loader.

`setting("SYNTH_X", 5, range=(1, 10))` is a field whose default is 5 and whose value comes from
SYNTH_X; the field's type says how the value is parsed (int, float, str, bool, Path, tuples of
str, or None for unset). An unset or empty variable means the default.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import NoneType, UnionType
from typing import Any

from synth_pipelines.core.errors import InvalidInputError

BOOLEANS = ("true", "false")


@dataclass(frozen=True)
class Declaration:
    """How one setting is read: its variable and what it accepts.

    `range`: inclusive (low, high) of a number; `choices`: the accepted strings; `separator`:
    splits a tuple of strings; `from_home`: the default as a function of SYNTH_HOME; `read`: a
    reader of its own, given the environment and the group's values read so far.
    """

    env: str
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    separator: str | None = None
    from_home: Callable[[Path], Any] | None = None
    read: Callable[[Mapping[str, str], dict[str, Any]], Any] | None = None


def setting(
    env: str,
    default: Any = dataclasses.MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    range: tuple[float, float] | None = None,
    choices: tuple[str, ...] | None = None,
    separator: str | None = None,
    from_home: Callable[[Path], Any] | None = None,
    read: Callable[[Mapping[str, str], dict[str, Any]], Any] | None = None,
) -> Any:
    """A dataclass field read from `env`, defaulting to `default`, `factory()` or
    `from_home(home)` (a field with no dataclass default: the loader fills it)."""
    declaration = Declaration(env, range, choices, separator, from_home, read)
    metadata = {"setting": declaration}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def group() -> Any:
    """A dataclass field holding a group of settings (itself a dataclass of `setting`s)."""
    return dataclasses.field(metadata={"group": True})


def declaration(cls: type, name: str) -> Declaration:
    """The declaration of setting `name` of the settings dataclass `cls`."""
    for f in dataclasses.fields(cls):
        if f.name == name and "setting" in f.metadata:
            return f.metadata["setting"]
    raise KeyError(f"{cls.__name__} declares no setting {name!r}")


def declared_fields(cls: type) -> Iterator[tuple[str, dataclasses.Field]]:
    """Every setting of the settings dataclass `cls` and of its groups, as ("group.name", field)
    ("name" at the top level)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if "group" in f.metadata:
            for name, inner in declared_fields(hints[f.name]):
                yield f"{f.name}.{name}", inner
        else:
            yield f.name, f


def declared_default(f: dataclasses.Field, home: Path | None) -> Any:
    """What field `f` holds when its variable is unset."""
    spec: Declaration = f.metadata["setting"]
    if spec.from_home is not None:
        return spec.from_home(home)
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def load(cls: type, environ: Mapping[str, str], home: Path | None = None) -> Any:
    """An instance of the settings dataclass `cls` read from `environ`: each setting parsed, or
    its declared default when unset or empty; groups read recursively. `home` (or a `home`
    setting, read before the fields that need it) feeds the `from_home` defaults."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if "group" in f.metadata:
            values[f.name] = load(hints[f.name], environ, home)
            continue
        spec: Declaration = f.metadata["setting"]
        if spec.read is not None:
            values[f.name] = spec.read(environ, values)
        else:
            raw = (environ.get(spec.env) or "").strip()
            value = parse(spec, hints[f.name], raw) if raw else None
            values[f.name] = declared_default(f, home) if value is None else value
        if f.name == "home":
            home = values["home"]
    return cls(**values)


def parse(spec: Declaration, kind: Any, raw: str) -> Any:
    """`raw` (not empty) as a value of type `kind`, within the declaration's bounds (None: a
    list of no items, so the default); an InvalidInputError names the variable and what it
    accepts."""
    name = spec.env
    if isinstance(kind, UnionType):  # `X | None`: a set variable is an X
        (kind,) = (arg for arg in typing.get_args(kind) if arg is not NoneType)
    if kind is bool:
        return _choice(name, raw, BOOLEANS) == "true"
    if kind is str:
        return raw if spec.choices is None else _choice(name, raw, spec.choices)
    if kind is int or kind is float:
        return _number(name, raw, kind, spec.range)
    if kind is Path:
        return Path(raw).expanduser().absolute()
    if typing.get_origin(kind) is tuple and spec.separator:
        items = tuple(item.strip() for item in raw.split(spec.separator) if item.strip())
        return items or None
    raise TypeError(f"{name}: no reader for settings of type {kind!r}")


def _choice(name: str, value: str, accepted: tuple[str, ...]) -> str:
    if value not in accepted:
        raise InvalidInputError(f"{name}={value!r} is not one of: {', '.join(accepted)}")
    return value


def _number(name: str, raw: str, kind: type, bounds: tuple[float, float] | None) -> float:
    try:
        value = kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise InvalidInputError(f"{name}={raw!r} is not {what}") from None
    if bounds is not None:
        low, high = bounds
        if not low <= value <= high:
            raise InvalidInputError(f"{name}={value} is out of range: accepted {low}..{high}")
    return value
