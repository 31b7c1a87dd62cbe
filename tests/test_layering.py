"""The import contract, read from the source (ast), so a wrong-way import fails here:

- the domain (core) imports nothing of Kakashi outside itself, and no I/O or Textual;
- the engine imports no front-end (desk, CLI, report, service);
- front-ends (the desk, the CLI) reach the engine only through the trading service: they
  import neither the engine nor the store's writer.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "kakashi_tui"


def imports_of(path: Path) -> set[str]:
    """Every module a file imports (module-level and inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def files(*parts: str) -> list[Path]:
    base = PKG.joinpath(*parts)
    return sorted(base.rglob("*.py")) if base.is_dir() else [base]


def test_the_contract_reads_imports_at_all():  # a parser that finds nothing would pass everything
    assert "kakashi_tui.service" in imports_of(PKG / "tui" / "app.py")
    assert "kakashi_tui.core.models" in imports_of(PKG / "engine.py")


def test_the_domain_imports_nothing_outside_itself():
    for f in files("core"):
        for m in imports_of(f):
            assert not (m.startswith("kakashi_tui.") and not m.startswith("kakashi_tui.core")), f"{f.name}: {m}"
            assert m.split(".")[0] not in {"textual", "httpx", "peewee", "sqlite3", "socket", "os", "rich"}, \
                f"{f.name} imports {m}: the domain does no I/O"


FRONT_ENDS = ("kakashi_tui.tui", "kakashi_tui.cli", "kakashi_tui.catalog_cli", "kakashi_tui.report",
              "kakashi_tui.charts")


def test_the_engine_imports_no_front_end_nor_the_service():
    for f in files("engine.py") + files("commands.py") + files("adapters"):
        for m in imports_of(f):
            assert not m.startswith(FRONT_ENDS + ("kakashi_tui.service", "kakashi_tui.runtime")), f"{f.name}: {m}"


def test_front_ends_drive_the_service_not_the_engine():
    for f in files("tui") + files("cli.py") + files("catalog_cli.py"):
        for m in imports_of(f):
            assert not m.startswith(("kakashi_tui.engine", "textual.worker")), f"{f.name}: {m}"
            assert m not in {"kakashi_tui.adapters.store.Store"}, f"{f.name} opens the writer itself: {m}"


def test_the_service_imports_no_front_end():
    for f in files("service.py") + files("runtime.py") + files("view.py"):
        for m in imports_of(f):
            assert not m.startswith(FRONT_ENDS), f"{f.name}: {m}"
