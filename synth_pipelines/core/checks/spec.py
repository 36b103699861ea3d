"""YAML data tests → validated `TestSpec`s, each knowing the file and line it came from.

```yaml
assets:
  - name: face_inventory
    tests:                      # table-level tests
      - row_count: {min: 1}
    columns:
      - name: gender
        tests:
          - not_null
          - accepted_values: {values: [female, male], severity: error}
          - expect_column_values_to_match_regex: {regex: "^[a-z]+$", where: "status == 'available'"}
```

Each test is one check on its asset, named `<column>__<test>` (`gender__not_null`), `<test>` for
a table-level test (`row_count`), or its `name:`. Dagster groups checks by asset, so a name needs
no asset prefix; one given with it (`face_inventory__x`, as names were before issue 21) is read
without it.

Everything wrong is an error naming the file and line: an unknown test, asset or column, a missing
or unknown argument, a bad severity or `where`, two tests with one name on one asset, a name a
built-in check of the asset has. Nothing is dropped.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from synth_pipelines.core.checks.catalog import COMMON_KEYS, TestKind
from synth_pipelines.core.checks.kinds import UnknownTestKindError, kind_named
from synth_pipelines.core.checks.names import CODE_CHECKS, unprefixed
from synth_pipelines.core.checks.outcome import SEVERITIES
from synth_pipelines.core.errors import InvalidInputError


class CheckSpecError(InvalidInputError):
    """A YAML test file that cannot be compiled; the message starts with `file:line:`."""

    def __init__(self, path: Path | str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line = str(path), line


@dataclass(frozen=True)
class TableInfo:
    """What the compiler knows about a checkable asset: its columns (None: known per run)."""

    columns: tuple[str, ...] | None
    relationship_target: bool = True  # whether other tables' `relationships` may point at it


@dataclass(frozen=True)
class TestSpec:
    """One declared test: one asset check."""

    asset: str
    column: str | None
    test: str
    kind: TestKind
    args: dict[str, Any]
    severity: str
    where: str | None
    name: str  # the check name on its asset: <column>__<test> (or <test>) unless the YAML names it
    description: str
    path: str
    line: int

    @property
    def blocking(self) -> bool:
        return self.severity == "error"

    @property
    def columns_read(self) -> set[str]:
        """Every column this test reads: its own and those its `where` names."""
        names = {self.column} if self.column else set()
        if self.where:
            names |= {
                n.id
                for n in ast.walk(ast.parse(self.where, mode="eval"))
                if isinstance(n, ast.Name)
            }
        return names

    @property
    def location(self) -> str:
        return f"{Path(self.path).name}:{self.line}"


@dataclass
class _Node:
    """A YAML value with the line it starts on (1-based)."""

    value: Any
    line: int


def _plain(node: yaml.Node) -> Any:
    """A composed YAML node as plain Python (values constructed by PyYAML's safe rules)."""
    return yaml.safe_load(yaml.serialize(node))


def _mapping(node: yaml.Node, path: Path, what: str) -> dict[str, _Node]:
    if not isinstance(node, yaml.MappingNode):
        raise CheckSpecError(path, node.start_mark.line + 1, f"{what} must be a mapping")
    out: dict[str, _Node] = {}
    for key_node, value_node in node.value:
        key = _plain(key_node)
        if key in out:
            raise CheckSpecError(path, key_node.start_mark.line + 1, f"{what}: {key!r} twice")
        out[str(key)] = _Node(value_node, key_node.start_mark.line + 1)
    return out


def _sequence(node: yaml.Node, path: Path, what: str) -> list[yaml.Node]:
    if isinstance(node, yaml.ScalarNode) and _plain(node) is None:
        return []
    if not isinstance(node, yaml.SequenceNode):
        raise CheckSpecError(path, node.start_mark.line + 1, f"{what} must be a list")
    return list(node.value)


def _unknown_keys(keys: dict[str, _Node], allowed: tuple[str, ...], path: Path, what: str) -> None:
    for key, node in keys.items():
        if key not in allowed:
            raise CheckSpecError(
                path, node.line, f"{what}: unknown key {key!r} (accepted: {', '.join(allowed)})"
            )


def load_specs(paths: list[Path], tables: dict[str, TableInfo]) -> list[TestSpec]:
    """Every test in `paths`, validated against `tables`; raises CheckSpecError on the first
    problem. Check names are unique per asset across all files, and none is the name of a
    built-in check on that asset (CODE_CHECKS)."""
    specs: list[TestSpec] = []
    seen: dict[tuple[str, str], TestSpec] = {}
    for path in paths:
        for spec in _load_file(path, tables):
            if spec.name in CODE_CHECKS.get(spec.asset, ()):
                raise CheckSpecError(
                    path,
                    spec.line,
                    f"check name {spec.name!r} is a built-in check of {spec.asset}; "
                    "give the test another `name:`",
                )
            first = seen.get((spec.asset, spec.name))
            if first is not None:
                raise CheckSpecError(
                    path,
                    spec.line,
                    f"check name {spec.name!r} on {spec.asset} is already used at "
                    f"{first.location}; give one of them a `name:`",
                )
            seen[spec.asset, spec.name] = spec
            specs.append(spec)
    return specs


def _load_file(path: Path, tables: dict[str, TableInfo]) -> list[TestSpec]:
    try:
        root = yaml.compose(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise CheckSpecError(path, line, f"not valid YAML: {problem}") from None
    if root is None:
        return []
    top = _mapping(root, path, "the file")
    _unknown_keys(top, ("version", "assets"), path, "the file")
    if "assets" not in top:
        raise CheckSpecError(path, 1, "the file has no `assets:` list")
    specs = []
    for asset_node in _sequence(top["assets"].value, path, "assets"):
        specs.extend(_load_asset(asset_node, path, tables))
    return specs


def _load_asset(node: yaml.Node, path: Path, tables: dict[str, TableInfo]) -> list[TestSpec]:
    entry = _mapping(node, path, "an asset entry")
    _unknown_keys(entry, ("name", "description", "tests", "columns"), path, "an asset entry")
    if "name" not in entry:
        raise CheckSpecError(path, node.start_mark.line + 1, "an asset entry has no `name:`")
    asset = str(_plain(entry["name"].value))
    if asset not in tables:
        raise CheckSpecError(
            path,
            entry["name"].line,
            f"unknown asset {asset!r}: checkable assets are {', '.join(sorted(tables))}",
        )
    specs = []
    for test_node in _sequence(entry["tests"].value, path, "tests") if "tests" in entry else []:
        specs.append(_load_test(test_node, path, asset, None, tables))
    for column_node in (
        _sequence(entry["columns"].value, path, "columns") if "columns" in entry else []
    ):
        column_entry = _mapping(column_node, path, "a column entry")
        _unknown_keys(column_entry, ("name", "description", "tests"), path, "a column entry")
        if "name" not in column_entry:
            raise CheckSpecError(
                path, column_node.start_mark.line + 1, "a column entry has no `name:`"
            )
        column = str(_plain(column_entry["name"].value))
        known = tables[asset].columns
        if known is not None and column not in known:
            raise CheckSpecError(
                path,
                column_entry["name"].line,
                f"unknown column {column!r} of {asset}: its columns are {', '.join(known)}",
            )
        tests = column_entry.get("tests")
        for test_node in _sequence(tests.value, path, "tests") if tests else []:
            specs.append(_load_test(test_node, path, asset, column, tables))
    return specs


def _load_test(
    node: yaml.Node, path: Path, asset: str, column: str | None, tables: dict[str, TableInfo]
) -> TestSpec:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):  # `- not_null`
        test, raw_args = str(_plain(node)), {}
    else:
        entry = _mapping(node, path, "a test")
        if len(entry) != 1:
            raise CheckSpecError(
                path, line, f"a test is one `name: {{arguments}}` pair, got {sorted(entry)}"
            )
        ((test, args_node),) = entry.items()
        value = _plain(args_node.value)
        if value is None:
            raw_args = {}
        elif isinstance(value, dict):
            raw_args = {str(k): v for k, v in value.items()}
        else:
            raise CheckSpecError(path, line, f"{test}: arguments must be a mapping, got {value!r}")
    try:
        kind = kind_named(test)
    except UnknownTestKindError as exc:
        raise CheckSpecError(path, line, str(exc)) from None
    where_am_i = f"{asset}.{column}" if column else asset
    if column is None and kind.needs_column:
        raise CheckSpecError(path, line, f"{test} tests a column: declare it under `columns:`")
    if column is not None and not kind.needs_column:
        raise CheckSpecError(path, line, f"{test} is a table-level test: declare it under `tests:`")
    args = {k: v for k, v in raw_args.items() if k not in COMMON_KEYS}
    for key in args:
        if key not in kind.arguments:
            accepted = ", ".join((*kind.arguments, *COMMON_KEYS))
            raise CheckSpecError(
                path,
                line,
                f"{test} on {where_am_i}: unknown argument {key!r} (accepted: {accepted})",
            )
    for key in kind.required:
        if key not in args:
            raise CheckSpecError(path, line, f"{test} on {where_am_i}: missing argument {key!r}")
    severity = str(raw_args.get("severity", "error"))
    if severity not in SEVERITIES:
        raise CheckSpecError(
            path, line, f"{test} on {where_am_i}: severity {severity!r} is not error or warn"
        )
    where = raw_args.get("where")
    if where is not None:
        try:
            compile(str(where), "<where>", "eval")
        except SyntaxError as exc:
            raise CheckSpecError(
                path,
                line,
                f"{test} on {where_am_i}: `where` {where!r} is not an expression: {exc.msg}",
            ) from None
    if kind.validate is not None:
        try:
            kind.validate(args, tables)
        except ValueError as exc:
            raise CheckSpecError(path, line, f"{test} on {where_am_i}: {exc}") from None
    name = unprefixed(asset, str(raw_args.get("name") or "__".join(filter(None, (column, test)))))
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise CheckSpecError(path, line, f"check name {name!r}: use letters, digits and _ only")
    return TestSpec(
        asset=asset,
        column=column,
        test=test,
        kind=kind,
        args=args,
        severity=severity,
        where=str(where) if where is not None else None,
        name=name,
        description=str(raw_args.get("description") or _describe(kind, column, args, where)),
        path=str(path),
        line=line,
    )


def _describe(kind: TestKind, column: str | None, args: dict[str, Any], where: Any) -> str:
    subject = f"`{column}`" if column else "the table"
    if kind.describe is not None:
        detail = kind.describe(subject, args)
    else:
        detail = f"{kind.name} on {subject} {args or ''}".rstrip()
    return detail + (f" (where {where})" if where else "")


def spec_files(folder: Path) -> list[Path]:
    """The YAML test files in `folder`, sorted (none is fine)."""
    return sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
