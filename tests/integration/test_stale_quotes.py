"""The stale-quote guard is reachable from every source (issue #14): a quote keeps the time the
exchange (or the recording) says it was seen, a replay plays it at the tick that fetched it
(``recv_ts``), and the risk gate refuses it when it is older than ``max_quote_age_s``.
Real parts: SQLite in tmp, Parquet catalogs, JSONL files, the simulator."""

from __future__ import annotations

import json
import sqlite3

import pyarrow.parquet as pq
import pytest

from kakashi_tui.adapters import catalog as cat
from kakashi_tui.adapters.catalog import CatalogWriter, import_ticks
from kakashi_tui.adapters.columnar import replay_catalog
from kakashi_tui.adapters.replay import group_ticks, read_jsonl
from kakashi_tui.adapters.sim import SimExchange
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.errors import ConfigError
from kakashi_tui.trading.config import KakashiConfig, SimSection, load_config
from kakashi_tui.trading.engine import Engine, EngineConfig
from tests.conftest import SIM_START_MS, make_engine
from tests.integration.test_replay import replay, tables

T0 = SIM_START_MS
STEP = 60_000


def quote(ts, recv=None, bid="0.4000", ask="0.4200"):
    rec = {
        "type": "snapshot",
        "ticker": "KX-STALE",
        "ts": ts,
        "yes_bid": bid,
        "yes_ask": ask,
        "volume": 10,
        "book": {"yes": [[bid, 50]], "no": [[f"{1 - float(ask):.4f}", 50]]},
    }
    if recv is not None:
        rec["recv_ts"] = recv
    return rec


def stale_records():
    """Tick 1: a fresh quote, no belief. Tick 2 (a minute on): the exchange re-sends the same quote
    (its own time is still tick 1's) and a belief with a large edge arrives: refused, stale.
    Tick 3: a fresh quote, the same belief: accepted."""
    return [
        {"type": "start", "ts": T0},
        {"type": "market", "ticker": "KX-STALE", "title": "stale test", "close_ts": T0 + 100 * STEP},
        quote(T0 + STEP, T0 + STEP),
        quote(T0 + STEP, T0 + 2 * STEP),
        {"type": "estimate", "ticker": "KX-STALE", "ts": T0 + 2 * STEP, "p_hat": "0.70", "source": "beliefs-file"},
        quote(T0 + 3 * STEP, T0 + 3 * STEP, bid="0.4100", ask="0.4300"),
    ]


def write(path, recs):
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def guard_verdicts(db):
    return [(d[0], d[7], d[8]) for d in tables(db)["decisions"]]  # (ts, accepted, reason)


def test_a_jsonl_replay_refuses_a_re_sent_old_quote_as_stale(tmp_path):
    engine = replay(group_ticks(read_jsonl(write(tmp_path / "r.jsonl", stale_records()))), tmp_path / "r.db")
    assert engine.tick_count == 3  # the re-sent quote joined the tick of its recv_ts
    assert guard_verdicts(tmp_path / "r.db") == [
        (T0 + 2 * STEP, 0, "stale quote (60000 ms > 30000 ms)"),
        (T0 + 3 * STEP, 1, "accepted"),
    ]
    # the quote the gate refused is stored once, with its own (old) time
    con = sqlite3.connect(tmp_path / "r.db")
    assert con.execute("SELECT ts FROM snapshots ORDER BY id").fetchall() == [(T0 + STEP,), (T0 + 3 * STEP,)]
    con.close()


def test_a_recv_ts_that_is_not_an_epoch_ms_is_rejected_with_its_line(tmp_path):
    recs = stale_records()
    recs[3] = {**recs[3], "recv_ts": (T0 + 2 * STEP) // 1000}
    ticks = [t for t in group_ticks(read_jsonl(write(tmp_path / "r.jsonl", recs))) if not isinstance(t, int)]
    reasons = [r for t in ticks for r, _ in t.rejected]
    assert reasons == [
        f"line 4: snapshot record recv_ts {(T0 + 2 * STEP) // 1000} looks like epoch seconds, not milliseconds"
    ]


def catalog_of(tmp_path, recs):
    root = tmp_path / "catalog"
    writer = CatalogWriter(root, roll_s=float("inf"))
    try:
        res = import_ticks(group_ticks(read_jsonl(write(tmp_path / "in.jsonl", recs))), writer, "import")
    finally:
        writer.close()
    assert res.rejected == 0
    return root


def replay_from(root, db, columnar):
    store = Store(db)
    engine, _stats = replay_catalog(
        root, lambda src, ests: Engine(store, src, ests, EngineConfig()), every_row=not columnar
    )
    store.close()
    return engine


def test_catalog_import_keeps_the_fetch_time_and_a_catalog_replay_refuses_the_old_quote(tmp_path):
    root = catalog_of(tmp_path, stale_records())
    t = pq.read_table(cat.files(root, "snapshots")[0])
    assert t.column("ts").to_pylist() == [T0 + STEP, T0 + STEP, T0 + 3 * STEP]
    assert t.column("recv_ts").to_pylist() == [T0 + STEP, T0 + 2 * STEP, T0 + 3 * STEP]
    for columnar in (False, True):
        db = tmp_path / f"col-{columnar}.db"
        engine = replay_from(root, db, columnar)
        assert engine.tick_count == 3
        assert guard_verdicts(db) == [
            (T0 + 2 * STEP, 0, "stale quote (60000 ms > 30000 ms)"),
            (T0 + 3 * STEP, 1, "accepted"),
        ]
    assert tables(tmp_path / "col-False.db") == tables(tmp_path / "col-True.db")


def test_a_catalog_written_before_recv_ts_still_replays_by_its_ts(tmp_path):
    recs = [r for r in stale_records() if r.get("recv_ts") != T0 + 2 * STEP]  # no re-send: nothing is stale
    root = catalog_of(tmp_path, recs)
    for f in cat.files(root, "snapshots"):  # as an older Kakashi wrote it: no recv_ts column
        t = pq.read_table(f)
        pq.write_table(t.drop_columns(["recv_ts"]), f)
    for columnar in (False, True):
        db = tmp_path / f"old-{columnar}.db"
        engine = replay_from(root, db, columnar)
        assert engine.tick_count == 3  # the quotes' ticks, and the estimate's
        assert guard_verdicts(db) == [(T0 + 3 * STEP, 1, "accepted")]


# -- the simulator: quiet markets ------------------------------------------------------------------
def stale_refusals(engine, ticks):
    """Run ``ticks`` ticks; the stale-quote refusals, each checked against the quote the gate saw."""
    out = []
    for _ in range(ticks):
        rep = engine.tick()
        now = engine.source.now_ms()
        for d in rep.decisions:
            if d.reason.startswith("stale quote"):
                s = engine.quotes[d.ticker]  # the sim's own quote, a whole step or more old
                assert now - s.ts >= STEP and (now - s.ts) % STEP == 0 and d.ts == now and not d.accepted
                assert d.reason == f"stale quote ({now - s.ts} ms > 30000 ms)"
                out.append(d)
    return out


def test_the_simulator_leaves_a_market_unquoted_now_and_then_and_the_guard_refuses_its_old_quote(tmp_path):
    engine = make_engine(tmp_path / "k.db")  # the default [sim] quiet_rate
    stale = stale_refusals(engine, 300)
    engine.store.close()
    assert len(stale) >= 3
    refused = {(d.ts, d.ticker) for d in stale}
    assert not refused & {(f[0], f[1]) for f in tables(tmp_path / "k.db")["fills"]}  # nothing bought on them
    # without quiet spells every market is re-quoted at every step: nothing is ever stale
    quiet_free = make_engine(tmp_path / "q.db", cfg=KakashiConfig(sim=SimSection(quiet_rate=0)))
    assert stale_refusals(quiet_free, 300) == []
    quiet_free.store.close()


def published(sim):
    return {r.market["ticker"]: r.snapshot for r in sim.fetch().rows if r.snapshot is not None}


def test_quiet_spells_do_not_move_the_seeded_prices_and_a_resumed_sim_sees_the_same_spells():
    calm, quiet = SimExchange(seed=11, start_ms=T0, quiet_rate=0), SimExchange(seed=11, start_ms=T0, quiet_rate=0.5)
    held = requoted = 0
    for _ in range(60):
        a, b = published(calm), published(quiet)
        assert a.keys() == b.keys()  # the same markets open and close
        now = quiet.now_ms()
        for t, snap in b.items():
            if snap["ts"] == now:  # re-quoted this step: exactly the quote without quiet spells
                requoted += 1
                assert snap == a[t]
            else:
                held += 1
                assert snap["ts"] < now and a[t]["ts"] == now
    assert held > 50 and requoted > 100
    # a restart fast-forwards (nothing published on the way) into the same quotes, the stale ones too
    live = SimExchange(seed=3, start_ms=T0, quiet_rate=0.3)
    for _ in range(40):
        want = published(live)
    resumed = SimExchange(seed=3, start_ms=T0, quiet_rate=0.3)
    resumed.fast_forward(39)
    assert published(resumed) == want and any(s["ts"] < live.now_ms() for s in want.values())


def test_quiet_rate_is_a_bounded_sim_setting(tmp_path):
    good = tmp_path / "ok.toml"
    good.write_text("[sim]\nquiet_rate = 0.2\n")
    assert load_config(str(good)).sim.quiet_rate == 0.2
    for text in ("quiet_rate = 0.9", "quiet_rate = -0.1", "quiet_rate = nan"):
        bad = tmp_path / "bad.toml"
        bad.write_text(f"[sim]\n{text}\n")
        with pytest.raises(ConfigError, match=r"\[sim\] quiet_rate"):
            load_config(str(bad))


def test_a_recorded_sim_run_with_stale_refusals_replays_to_the_same_decisions_both_ways(tmp_path):
    writer = CatalogWriter(tmp_path / "catalog", roll_s=float("inf"), max_rows=700)  # several segments
    live = make_engine(tmp_path / "live.db", catalog=writer)
    for _ in range(250):
        live.tick()
    writer.close()
    live.store.close()
    want = tables(tmp_path / "live.db")
    assert want["fills"] and any(d[8].startswith("stale quote") for d in want["decisions"])
    for columnar in (False, True):
        store = Store(tmp_path / f"r-{columnar}.db")
        ec = KakashiConfig().engine_config()
        replay_catalog(
            tmp_path / "catalog",
            lambda src, ests, store=store, ec=ec: Engine(store, src, ests, ec),
            every_row=not columnar,
            start_ms=SIM_START_MS,
        )
        store.close()
        assert tables(tmp_path / f"r-{columnar}.db") == want
