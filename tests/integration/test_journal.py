"""#19 item 6: the log tells the week. Every line names its run and database; fills,
settlements and changes of state (from anywhere) have their own lines; a repeating rejection
is written once per window, then counted; a headless run writes the same log file beside the
database and raises the same alerts, webhook included, as the desk."""

from __future__ import annotations

import re
import sqlite3

from kakashi_tui.adapters.alerts import KILL_EXTERNAL, Alerter, Webhook
from kakashi_tui.frontends.cli import main as cli
from kakashi_tui.frontends.journal import Journal, state_alert
from kakashi_tui.frontends.logfile import REPEAT_WINDOW_S, OperatorLog
from kakashi_tui.trading.service import TradingService

from .test_alerts_log import _Hook, hook_server  # noqa: F401 - a fixture

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (\w+) +run=(\w{8}) db=(\S+) (.*)$")


def test_a_repeating_rejection_is_written_once_per_window_then_counted(tmp_path):
    now = [1000.0]
    log = OperatorLog(tmp_path / "k.log", run_id="abcd1234", db=tmp_path / "k.db", clock=lambda: now[0])
    for i in range(100):  # the same market and reason every tick, its figures moving
        log.repeating("DECISION", ("T", "yes", "stale quote (# ms)"), f"T YES rejected: stale quote ({i} ms)")
    log.repeating("DECISION", ("U", "yes", "stale quote (# ms)"), "U YES rejected: stale quote (5 ms)")
    now[0] += REPEAT_WINDOW_S
    log.repeating("DECISION", ("T", "yes", "stale quote (# ms)"), "T YES rejected: stale quote (100 ms)")
    log.close()
    texts = [LINE.match(ln).group(4) for ln in (tmp_path / "k.log").read_text().splitlines()]  # type: ignore[union-attr]
    assert texts == [
        "T YES rejected: stale quote (0 ms)",
        "U YES rejected: stale quote (5 ms)",
        "repeated 99 times in 60 min: T YES rejected: stale quote (0 ms)",  # the window closed
        "T YES rejected: stale quote (100 ms)",  # a new window: in full again
    ]


def test_a_headless_run_writes_the_desks_log_beside_the_database(tmp_path, capsys):
    db = tmp_path / "k.db"
    assert cli.main(["run", "--headless", "--ticks", "200", "--no-record", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    run_id = re.search(r"\| run (\w{8}), log (\S+)", out)
    assert run_id is not None and run_id.group(2) == str(tmp_path / "kakashi.log")
    lines = [LINE.match(ln) for ln in (tmp_path / "kakashi.log").read_text().splitlines()]
    assert lines and all(m is not None for m in lines)  # every line names its run and database
    assert {(m.group(2), m.group(3)) for m in lines if m} == {(run_id.group(1), "k.db")}
    cats = [m.group(1) for m in lines if m]
    with sqlite3.connect(db) as c:
        fills = c.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
        settles = c.execute("SELECT COUNT(*) FROM ledger WHERE kind IN ('settle', 'settle_fix')").fetchone()[0]
    assert fills > 0 and settles > 0
    assert cats.count("FILL") == fills and cats.count("SETTLE") == settles and cats.count("TICK") == 200
    assert cats[0] == "COMMAND" and cats[-1] == "COMMAND"  # started, finished


def test_outside_commands_are_state_lines_and_an_outside_kill_reaches_the_webhook(tmp_path, capsys, hook_server):  # noqa: F811
    from tests.conftest import make_engine

    db = tmp_path / "k.db"
    service = TradingService(make_engine(db), interval=0)
    log = OperatorLog(tmp_path / "k.log", db=db)
    hook = Webhook(hook_server)
    alert = Alerter(log=log, webhook=hook)
    service.on_report(Journal(log, lambda old, new: (a := state_alert(old, new)) and alert(*a)).on_report)
    try:
        service.step()
        assert cli.main(["pause", "--db", str(db)]) == 0  # another process, while this engine holds the file
        service.step()
        assert cli.main(["kill", "--reason", "desk two", "--db", str(db)]) == 0
        service.step()
        hook.flush()
    finally:
        alert.close()
        service.stop()
        service._engine.store.close()
        log.close()
    capsys.readouterr()
    text = (tmp_path / "k.log").read_text()
    assert "STATE    run=" in text and "RUNNING -> PAUSED" in text
    assert "PAUSED -> HALTED (kill switch: desk two; also paused)" in text
    assert [b["kind"] for _t, b in _Hook.received] == [KILL_EXTERNAL]
    assert "desk two" in _Hook.received[0][1]["message"]
