"""One spelling per unit (issue #21): prices and money are ``_cc``, counts ``_hundredths``.

Walks the package's Python source and names, file:line, every identifier (a function, class,
argument, assignment, attribute, keyword, imported name) or identifier-like string (a column
or key name: the catalog schemas' fields, a ``__slots__`` entry, a dict key) spelled with an
old unit suffix: ``_e4``, ``_e2`` or ``_h`` anywhere, ``_cents`` outside the old database
schemas of adapters/store/migrations.py (whole cents: a different unit, x 100). The catalog's
version-1 rename table (``catalog.UPGRADES``) says the old column names on purpose."""

import ast
import re
from pathlib import Path

import kakashi_tui

PACKAGE = Path(kakashi_tui.__file__).parent
OLD = re.compile(r"_(e4|e2|h)$", re.IGNORECASE)
CENTS = re.compile(r"_cents$", re.IGNORECASE)
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
#: (file relative to the package, the name of the assignment whose value may say old names)
RENAME_TABLES = {("adapters/catalog.py", "UPGRADES")}
#: files whose old schemas keep their ``_cents`` columns
CENTS_SCHEMAS = {"adapters/store/migrations.py"}


def _names(node: ast.AST) -> list[str]:
    """The identifiers ``node`` itself introduces or names."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.keyword) and node.arg is not None:
        return [node.arg]
    if isinstance(node, ast.alias):
        return [n for n in (node.name.rsplit(".", 1)[-1], node.asname) if n]
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return list(node.names)
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and IDENT.fullmatch(node.value):
        return node.value.split(".")  # a column, key or struct field ("yes_bids.price_cc")
    return []


def offenders(source: str, rel: str) -> list[str]:
    """``rel:line: name`` for each old spelling in ``source`` (a file at ``rel`` in the package)."""
    tree = ast.parse(source)
    allowed: set[int] = set()  # ids of the nodes inside a rename table
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and (rel, t.id) in RENAME_TABLES for t in targets) and node.value:
                allowed.update(id(n) for n in ast.walk(node.value))
    out = []
    for node in ast.walk(tree):
        if id(node) in allowed:
            continue
        for name in _names(node):
            if OLD.search(name) or (CENTS.search(name) and rel not in CENTS_SCHEMAS):
                out.append(f"{rel}:{getattr(node, 'lineno', 0)}: {name}")
    return sorted(set(out))


def package_offenders(root: Path = PACKAGE) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        out += offenders(path.read_text(encoding="utf-8"), path.relative_to(root).as_posix())
    return out


def test_the_package_spells_each_unit_one_way():
    found = package_offenders()
    assert not found, "old unit spellings (use _cc for $0.0001, _hundredths for 1/100 contract):\n" + "\n".join(found)


#: tests that say the old names on purpose: version-1 catalog files, this check's own cases
ABOUT_OLD_NAMES = {"integration/test_catalog_versions.py", "unit/test_unit_spelling.py"}


def test_tests_and_benchmarks_spell_each_unit_one_way():
    checkout = PACKAGE.parent
    found = [
        f"{folder}/{f}"
        for folder in ("tests", "benchmarks")
        for f in package_offenders(checkout / folder)
        if f.split(":")[0] not in ABOUT_OLD_NAMES
    ]
    assert not found, "old unit spellings:\n" + "\n".join(found)


def test_the_check_finds_each_kind_of_old_spelling():
    source = """
import x as volume_h
from y import to_e4
MAX_E2 = 1
class Q:
    price_e4: int
    __slots__ = ("volume_h",)
def f(count_e2, *, qty_H=0):
    q.want_h = 1
    g(delta_e2=2)
    return {"yes_bids.price_e4": 1}
def fine(price_cc, qty_hundredths, h, cc):
    return "is a sentence_h, not a name"
equity_cents = 0
"""
    found = offenders(source, "m.py")
    assert sorted(f.split(": ")[1] for f in found) == [
        "MAX_E2",
        "count_e2",
        "delta_e2",
        "equity_cents",
        "price_e4",
        "price_e4",
        "qty_H",
        "to_e4",
        "volume_h",
        "volume_h",
        "want_h",
    ]
    assert "m.py:2: volume_h" in found and "m.py:11: price_e4" in found
    # the allow-lists: the catalog's rename table, and old cents columns in migrations.py only
    table = 'UPGRADES = {2: {"snapshots": {"yes_bid_e4": "yes_bid_cc"}}}\nOTHER = {"yes_bid_e4": 1}\n'
    assert offenders(table, "adapters/catalog.py") == ["adapters/catalog.py:2: yes_bid_e4"]
    assert offenders(table, "adapters/x.py") == ["adapters/x.py:1: yes_bid_e4", "adapters/x.py:2: yes_bid_e4"]
    assert offenders('have = "worst_case_cents"\n', "adapters/store/migrations.py") == []
