"""Replay through the same engine tick: parity with the live run, bad records, CLI."""

import json
import sqlite3

from kakashi_tui.adapters.replay import (
    ReplayEstimator,
    ReplaySource,
    group_ticks,
    read_jsonl,
    records_from_db,
    write_jsonl,
)
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.trading.engine import Engine, EngineConfig
from tests.clirun import in_process
from tests.conftest import SIM_START_MS, make_engine


def tables(db):
    c = sqlite3.connect(db)
    try:
        return {
            "decisions": c.execute(
                "SELECT ts, tick, ticker, side, contracts_hundredths, limit_price_cc, worst_case_cc,"
                " accepted, reason FROM decisions ORDER BY id"
            ).fetchall(),
            "fills": c.execute(
                "SELECT ts, ticker, side, action, requested_hundredths, contracts_hundredths, value_cc,"
                " fee_cc, levels, order_id, role, trigger FROM fills ORDER BY id"
            ).fetchall(),
            # the paper orders (issue #23): as decided (their latency used), and what became of them
            "orders": c.execute(
                "SELECT id, ts, ticker, side, limit_cc, quantity_hundredths, tif, insert_latency_ms,"
                " cancel_latency_ms FROM orders ORDER BY id"
            ).fetchall(),
            "order_events": c.execute(
                "SELECT order_id, ts, state, reason, fill_id FROM order_events ORDER BY id"
            ).fetchall(),
            "ledger": c.execute(
                "SELECT ts, kind, ticker, side, contracts_hundredths, amount_cc, key FROM ledger ORDER BY id"
            ).fetchall(),
        }
    finally:
        c.close()


def replay(items, db):
    store = Store(db)
    source = ReplaySource(items)
    engine = Engine(store, source, [ReplayEstimator(source)], EngineConfig())
    while source.has_next():
        engine.tick()
    store.close()
    return engine


def test_recorded_sim_run_replays_to_the_same_decisions_fills_and_ledger(tmp_path):
    live = make_engine(tmp_path / "live.db")
    for _ in range(400):
        live.tick()
    live.store.close()
    want = tables(tmp_path / "live.db")
    assert want["fills"] and any(r[1] == "settle" for r in want["ledger"])
    # The database keeps a quote once: a quiet market the simulator re-sent unchanged (its makers
    # away) is not stored again, so a replay of the database does not see the re-sends nor the
    # refusals made on them; everything else is the run's (a catalog recording keeps every fetch
    # and replays those refusals too: tests/integration/test_stale_quotes.py). A re-send is a
    # decision with no quote of its market stored at its tick (the simulator stamps a fresh quote
    # with its tick's time); it is refused as stale, or by a stop the gate checks first (a daily
    # stop in force then: the reason alone does not name every re-send).
    c = sqlite3.connect(tmp_path / "live.db")
    stored = set(c.execute("SELECT ticker, ts FROM snapshots").fetchall())
    c.close()
    resent = [d for d in want["decisions"] if (d[2], d[0]) not in stored]
    assert any(d[8].startswith("stale quote") for d in resent) and not any(d[7] for d in resent)
    want = {**want, "decisions": [d for d in want["decisions"] if d not in resent]}

    # recorded to JSONL, then replayed from the file
    write_jsonl(records_from_db(tmp_path / "live.db"), tmp_path / "run.jsonl")
    replay(group_ticks(read_jsonl(tmp_path / "run.jsonl")), tmp_path / "from_file.db")
    assert tables(tmp_path / "from_file.db") == want

    # and straight from the earlier run's database
    recs = records_from_db(tmp_path / "live.db")
    replay(group_ticks((i, r, None) for i, r in enumerate(recs)), tmp_path / "from_db.db")
    assert tables(tmp_path / "from_db.db") == want


def test_bad_records_are_rejected_and_counted(capfd, tmp_path):
    T = SIM_START_MS
    lines = [
        {"type": "start", "ts": T},
        {"type": "market", "ticker": "A", "close_ts": T + 3_600_000},
        {
            "type": "snapshot",
            "ticker": "A",
            "ts": T + 60_000,
            "yes_bid": "0.40",
            "yes_ask": "0.45",
            "book": {"yes": [["0.40", 10]], "no": [["0.55", 10]]},
        },
        {"type": "snapshot", "ticker": "A", "ts": T + 60_000, "yes_bid": "0.50", "yes_ask": "0.45"},  # crossed
        {"type": "estimate", "ticker": "A", "ts": T + 60_000, "p_hat": "0.70", "source": "beliefs-file"},
        {"type": "estimate", "ticker": "A", "ts": T + 60_000, "p_hat": "1.70", "source": "beliefs-file"},
        "not json at all {",
        {"type": "bogus", "ts": T + 120_000},
        {"type": "snapshot", "ticker": "A", "ts": T + 30_000, "yes_bid": "0.40", "yes_ask": "0.45"},  # out of order
        {"type": "snapshot", "ticker": ["A"], "ts": T + 120_000, "yes_bid": "0.41", "yes_ask": "0.44"},
        {"type": "snapshot", "ticker": "A", "ts": T + 120_000, "yes_bid": "0.41", "yes_ask": "0.44", "book": "deep"},
        {"type": "snapshot", "ticker": "A", "ts": T + 120_000, "yes_bid": "0.41", "yes_ask": "0.44"},
        {"type": "settlement", "ticker": "A", "ts": T + 180_000, "result": "yes"},
    ]
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    p = in_process(
        capfd, "replay", "--input", str(f), "--db", str(tmp_path / "r.db"), "--report", str(tmp_path / "rep")
    )
    assert p.returncode == 0, p.stderr
    assert "replayed 3 ticks" in p.stdout and "rejected rows 7" in p.stdout
    assert "post-mortem written to" in p.stdout
    c = sqlite3.connect(tmp_path / "r.db")
    reasons = [r for (r,) in c.execute("SELECT reason FROM rejected_rows")]
    assert any("crossed" in r for r in reasons) and any("malformed JSON" in r for r in reasons)
    assert any("unknown record type" in r for r in reasons) and any("out of time order" in r for r in reasons)
    assert any("estimate p_hat" in r and "outside [0, 1]" in r for r in reasons)
    assert any("ticker that is not text" in r for r in reasons) and any("yes_bids" in r for r in reasons)
    assert c.execute("SELECT COUNT(*) FROM fills").fetchone()[0] == 1
    assert c.execute("SELECT COUNT(*) FROM ledger WHERE kind = 'settle'").fetchone()[0] == 1


def test_a_file_of_nothing_but_bad_lines_is_still_counted(capfd, tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('garbage\n{"type": "nope"}\n')
    p = in_process(capfd, "replay", "--input", str(f), "--db", str(tmp_path / "r.db"))
    assert p.returncode == 0 and "rejected rows 2" in p.stdout


def test_replay_refuses_a_used_database_and_missing_input(capfd, tmp_path):
    e = make_engine(tmp_path / "used.db")
    e.tick()
    e.store.close()
    run = lambda *a: in_process(capfd, "replay", *a)
    p = run("--from-db", str(tmp_path / "used.db"), "--db", str(tmp_path / "used.db"))
    assert p.returncode != 0 and "kakashi: error:" in p.stderr and "Traceback" not in p.stderr
    p = run("--input", str(tmp_path / "missing.jsonl"), "--db", str(tmp_path / "x.db"))
    assert p.returncode == 2 and "no replay file" in p.stderr
    p = run("--db", str(tmp_path / "x.db"))
    assert p.returncode == 2 and "one of the arguments" in p.stderr
