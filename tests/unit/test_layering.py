"""The layers (ARCHITECTURE.md), checked by import-linter's contracts in pyproject.toml: a layer
imports only the layers below it, directly or through any chain of imports. The contracts run
here (and in ``make test``); the tests below also show they fail on a wrong-way import, so a
check that found nothing could not pass for one that works.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "kakashi_tui"
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"]


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter over the package at ``root`` (its pyproject's contracts), not the installed one."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [*LINT, "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layer_contracts_hold():
    out = lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout and "8 kept" in out.stdout


@pytest.fixture
def copy(tmp_path):
    """The package and its contracts in a scratch folder, to break on purpose."""
    shutil.copytree(PKG, tmp_path / "kakashi_tui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(
    "module, line, broken",
    [
        # the domain reaching up into the engine, directly
        ("core/fees.py", "import kakashi_tui.trading.engine", "Layers: front-ends > trading"),
        # an adapter reaching a front-end only through a chain (adapter -> fmt): indirect, still caught
        ("adapters/queries.py", "import kakashi_tui.frontends.fmt", "Layers: front-ends > trading"),
        # the desk driving the engine itself instead of the service
        ("frontends/desk/messages.py", "import kakashi_tui.trading.engine", "Front-ends drive the service"),
        # the report borrowing the desk's view model (it formats through frontends/fmt.py)
        ("frontends/report/books.py", "import kakashi_tui.trading.view", "The report reads the database"),
        # the domain drawing
        ("core/money.py", "import rich", "The domain does no I/O"),
    ],
)
def test_a_wrong_way_import_breaks_a_contract(copy, module, line, broken):
    path = copy / "kakashi_tui" / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # wrong way, on purpose\n", encoding="utf-8")
    out = lint(copy)
    assert out.returncode != 0
    assert broken in out.stdout.split("Broken contracts")[-1], out.stdout


def test_the_domain_does_no_io_from_the_standard_library_either():
    """import-linter sees third-party packages; the standard library's I/O is checked here."""
    for f in sorted((PKG / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            )
            for m in names:
                assert m.split(".")[0] not in {"sqlite3", "socket", "os", "subprocess", "shutil"}, (
                    f"{f.name} imports {m}: the domain does no I/O"
                )


def test_adapters_are_reached_through_their_contracts_not_probed():
    """#21: no getattr probe for an adapter hook, no __getattr__ proxy, and an engine refuses
    a source or an estimator that does not subclass its contract (adapters/source.py)."""
    import ast
    from pathlib import Path

    import pytest

    import kakashi_tui
    from kakashi_tui.adapters.source import FetchBatch
    from kakashi_tui.trading.engine import Engine, EngineConfig

    hooks = {"stop", "checkpoint", "feed_status", "watch_for", "reload", "watch", "flush", "take_said"}
    found = []
    for path in Path(kakashi_tui.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
                found.append(f"{path.name}: __getattr__")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in hooks
            ):
                found.append(f"{path.name}:{node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
    assert found == []

    class Duck:  # has the methods, not the contract
        name = "duck"

        def now_ms(self):
            return 0

        def fetch(self):
            return FetchBatch()

    with pytest.raises(TypeError, match="Duck is not a Source"):
        Engine(None, Duck(), [], EngineConfig())  # type: ignore[arg-type]
