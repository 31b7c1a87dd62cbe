from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests explore new examples on every local run; in CI (CI=true) they are derandomized,
# so a landing never depends on the luck of the draw (a failure prints its reproduction blob).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.models import BookLevel, Quote, QuoteRules
from kakashi_tui.trading.config import KakashiConfig
from kakashi_tui.trading.runtime import Options, build_engine

#: A fixed simulated clock start (2026-01-05T00:00:00Z) so runs are reproducible.
SIM_START_MS = 1_767_571_200_000


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch, tmp_path):
    for var in ("NO_COLOR", "KAKASHI_CONFIG", "KAKASHI_DB", "KAKASHI_API_BASE", "KAKASHI_SEED", "TEXTUAL_THEME"):
        monkeypatch.delenv(var, raising=False)
    # Every test runs in a folder of its own, and so do the processes it starts: what Kakashi writes
    # beside the working directory by default (reports/, a log) never lands in the checkout.
    monkeypatch.chdir(tmp_path)


# -- tiers: the folder a test lives in is its marker (`pytest -m unit`, `-m "not desk"`) -------------
TIERS = ("unit", "integration", "desk")
CHECKOUT = Path(__file__).resolve().parents[1]
_LEFT_BEFORE: set[str] = set()
# What the test tools keep beside the checkout (all in .gitignore): not Kakashi's output.
TOOL_CACHES = {
    ".hypothesis",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".import_linter_cache",
    "snapshot_report.html",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


def _checkout_files() -> set[str]:
    return {p.name for p in CHECKOUT.iterdir()}


def pytest_sessionstart(session):
    _LEFT_BEFORE.update(_checkout_files())


def pytest_sessionfinish(session, exitstatus):
    """No test writes into the checkout: anything new at its top level fails the run."""
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller checks once
        return
    new = sorted(_checkout_files() - _LEFT_BEFORE - TOOL_CACHES)
    if new:
        session.config.get_terminal_writer().line(f"tests wrote into the checkout: {', '.join(new)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def no_charts(monkeypatch):
    """Post-mortem exports in this test write their Markdown without drawing the PNGs: drawing them
    is ~1.7 s of CPU an export, and the charts are tested where they are the subject
    (tests/integration/test_report.py, test_risk_cli.py, tests/desk/test_pilot.py's export)."""
    from kakashi_tui.frontends.report import charts, ruin

    monkeypatch.setattr(charts, "write_charts", lambda d, folder: [])
    monkeypatch.setattr(ruin, "write_charts", lambda res, folder: [])


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "kakashi.db"


@pytest.fixture
def store(db_path):
    s = Store(db_path)
    yield s
    s.close()


def make_engine(db_path, seed: int = 7, cfg: KakashiConfig | None = None, catalog=None, **kw):
    """A seeded simulator engine; ``catalog`` (a CatalogWriter) records what it fetches and
    estimates (the recorder wraps the source, as runtime does; ``engine.source.recorder``)."""
    from kakashi_tui.adapters.catalog import Recorder

    opts = Options(source="sim", db=str(db_path), seed=seed, sim_start_ms=SIM_START_MS, **kw)
    recording = (lambda: Recorder(catalog)) if catalog is not None else None
    cfg = cfg or KakashiConfig()
    if "bracket_events" not in cfg.sim.model_fields_set:  # the world these tests were written in:
        # the seed's markets alone (a test of the bracket events asks for them: test_event_cap.py)
        cfg = cfg.model_copy(update={"sim": cfg.sim.model_copy(update={"bracket_events": 0})})
    return build_engine(opts, cfg, recording=recording)


@pytest.fixture
def sim_engine(db_path):
    e = make_engine(db_path)
    yield e
    e.store.close()


def query(db, sql: str) -> list[tuple]:
    """Every row of ``sql`` read from the SQLite file ``db`` on a connection of its own (what a
    run left in its database, as another process would read it)."""
    import sqlite3

    c = sqlite3.connect(db)
    try:
        return c.execute(sql).fetchall()
    finally:
        c.close()


def D(x) -> Decimal:
    return Decimal(str(x))


def book(ticker="T", ts=1_000, yes=((0.40, 10),), no=((0.55, 10),), **kw) -> Quote:
    """A quote from bid levels given best first: YES bids and NO bids (YES ask = 1 - NO bid),
    validated by pydantic's rule book and turned into the one quote type, as the tick sees it."""
    yes_bids = tuple(BookLevel(price=D(p), qty=D(q)) for p, q in yes)
    no_bids = tuple(BookLevel(price=D(p), qty=D(q)) for p, q in no)
    return Quote.from_rules(
        QuoteRules(
            ticker=ticker,
            ts=ts,
            yes_bid=yes_bids[0].price if yes_bids else None,
            yes_ask=(1 - no_bids[0].price) if no_bids else None,
            yes_bids=yes_bids,
            no_bids=no_bids,
            **kw,
        )
    )


def sim_digest(ex, ticks: int, *, with_source: bool = True) -> str:
    """A digest of everything a seeded simulator publishes over ``ticks`` fetches: its rows and
    quotes, and its oracle's estimates (seeded as the exchange). Issue #24 made each simulated
    market an event of its own; the rest of each row, and every price, is hashed as the code
    before published it (with the event it named then), so a digest taken then still holds."""
    import hashlib
    import json

    from kakashi_tui.adapters.sim import SimOracle

    oracle = SimOracle(ex, seed=ex.seed)
    h = hashlib.sha256()
    for _ in range(ticks):
        rows = ex.fetch().rows
        for r in rows:
            assert r.market["event_ticker"] == r.market["ticker"]
            market = {**r.market, "event_ticker": r.market["ticker"].rsplit("-", 1)[0]}
            h.update(json.dumps([market, r.snapshot, r.payload], sort_keys=True).encode())
        quoted = [r.market["ticker"] for r in rows if r.snapshot is not None]
        for e in oracle.estimates(quoted, ex.now_ms()):
            shown = f"{e.ticker} {e.p_hat} {e.source} {e.ts}" if with_source else f"{e.ticker} {e.p_hat} {e.ts}"
            h.update(shown.encode())
    return h.hexdigest()[:16]
