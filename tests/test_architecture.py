"""The architecture as tests: the import-linter contracts in pyproject.toml (core without
Dagster; the API and the portal clients of core; product lines independent outside the kernel;
the kernel importing no line), and no import of Dagster's private `dagster._core` anywhere in the
package (import-linter sees external packages only by their top-level name, so that rule is an
AST scan).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "synth_pipelines"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the package under `root`, with `root`'s pyproject.toml."""
    return subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
         "lint_imports_command()", "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip


def test_every_contract_is_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 kept, 0 broken" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("core/tabular/schema.py", "import dagster", "core is plain Python"),
        ("api/datasets.py", "import synth_pipelines.lines.faces.sensors", "the API is a client"),
        ("portal/datasets.py", "import synth_pipelines.partitions", "the portal is a client"),
        ("lines/tabular/assets.py", "import synth_pipelines.lines.faces.assets", "Dagster side"),
        ("core/flux/policy.py", "import synth_pipelines.core.persona.drafts", "(core)"),
        # A line's core calls its own checks (core/checks/personas.py): they may not reach
        # another line, here delivery through the dataset checks.
        ("core/checks/personas.py", "import synth_pipelines.core.checks.datasets", "(core)"),
        ("core/clock.py", "import synth_pipelines.core.flux", "the kernel"),
    ],
)
def test_a_violation_breaks_its_contract(tmp_path: Path, module: str, line: str, contract) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(PACKAGE, copy / "synth_pipelines", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    target = copy / "synth_pipelines" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports(copy)
    assert result.returncode != 0, result.stdout
    broken = [row for row in result.stdout.splitlines() if " BROKEN" in row]
    assert any(contract in row for row in broken), result.stdout


def private_dagster_imports(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [
                f"{path.relative_to(root)}:{node.lineno} {name}"
                for name in names
                if name.startswith("dagster._") or name.startswith("dagster_aws._")
            ]
    return found


def test_nothing_imports_dagster_private_modules(tmp_path: Path) -> None:
    assert private_dagster_imports(PACKAGE) == []
    # The scan finds one when there is one, under TYPE_CHECKING too.
    probe = tmp_path / "probe.py"
    probe.write_text("if TYPE_CHECKING:\n    from dagster._core.definitions import x\n")
    assert private_dagster_imports(tmp_path) == ["probe.py:2 dagster._core.definitions"]


def test_every_asset_has_owners_and_a_domain_tag() -> None:
    """What the catalog filters on: an owning team and a domain, on every asset of every line."""
    from synth_pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    missing = []
    for key in graph.get_all_asset_keys():
        spec = graph.get(key)
        if not spec.owners or not (spec.tags or {}).get("domain"):
            missing.append(key.to_user_string())
    assert not missing, f"assets without owners or a domain tag: {missing}"
    assert len(list(graph.get_all_asset_keys())) >= 9
