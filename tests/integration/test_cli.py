"""The ``kakashi`` command as an operator runs it: real processes, real files. Cases that only
read a command's exit code and lines (bad arguments, a bad config or database, options before the
subcommand, what a restart says) run it in-process through ``cli.main``, output read at the fds."""

import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from kakashi_tui.adapters.store.controls import Control
from kakashi_tui.adapters.store.writer import Store
from tests.clirun import ENV, in_process, kakashi


def assert_one_line_error(p, code):
    assert p.returncode == code, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("kakashi: error: "), p.stderr
    assert "Traceback" not in p.stderr


def test_snapshot_on_sim_prints_each_market_and_a_summary(capfd, tmp_path):
    p = in_process(capfd, "snapshot", "--db", str(tmp_path / "k.db"))
    assert p.returncode == 0, p.stderr
    saved = [ln for ln in p.stdout.splitlines() if ln.startswith("Snapshot saved for ")]
    assert len(saved) == 12  # the default simulator: 8 markets and a bracket event of 4
    assert p.stdout.splitlines()[-1] == "snapshot: 12 saved, 0 rejected from sim"
    with sqlite3.connect(tmp_path / "k.db") as c:
        assert c.execute("select count(*) from snapshots").fetchone()[0] == 12


def test_snapshot_falls_back_to_sim_when_kalshi_is_unreachable(capfd, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[kalshi]\ntimeout_s = 0.5\nmax_retries = 0\n")
    args = ("snapshot", "--source", "kalshi", "--api-base", "http://127.0.0.1:9/trade-api/v2", "--config", str(cfg))
    p = in_process(capfd, *args, "--db", str(tmp_path / "k.db"))
    assert p.returncode == 0, p.stderr
    assert "falling back to the simulated exchange" in p.stderr
    assert "Snapshot saved for SIM-" in p.stdout
    strict = in_process(capfd, *args, "--strict", "--db", str(tmp_path / "k2.db"))
    # Without credentials the source says once that books need a key; then the one error line.
    notice, *rest = [ln for ln in strict.stderr.splitlines() if ln.strip()]
    assert notice.startswith("kakashi: warning: Kalshi: no API key set"), strict.stderr
    assert_one_line_error(
        subprocess.CompletedProcess(strict.args, strict.returncode, strict.stdout, "\n".join(rest)), 1
    )
    assert "unreachable" in strict.stderr


def test_headless_run_then_continue_from_the_same_bankroll(capfd, tmp_path):
    db = str(tmp_path / "k.db")
    cfg = tmp_path / "k.toml"  # seed 7's eight markets alone: with its bracket event, 300 ticks reach the daily cap
    cfg.write_text("[sim]\nbracket_events = 0\n")
    p = in_process(capfd, "run", "--headless", "--ticks", "300", "--db", db, "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    ticks = [ln for ln in p.stdout.splitlines() if ln.startswith("tick ")]
    assert len(ticks) == 300
    summary = p.stdout.splitlines()[-1]
    assert summary.startswith("stopped after 300 ticks")
    s = Store(db, writer=False)
    cash, n_open = s.account().cash_cc, len(s.account().open_positions())
    s.close()
    p2 = in_process(capfd, "--headless", "--ticks", "1", "--db", db, "--config", str(cfg))  # bare: `kakashi run`
    assert p2.returncode == 0, p2.stderr
    out = p2.stdout.splitlines()
    assert out[1].startswith("kakashi: resumed: RUNNING | ") and out[1].endswith("(#300)")
    assert out[2].startswith("tick 301 ")
    from kakashi_tui.core.money import fmt_cc

    assert f"cash {fmt_cc(cash)}" in p.stdout.splitlines()[-1]
    assert n_open <= 5


def test_headless_stops_cleanly_on_sigterm(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kakashi_tui",
            "run",
            "--headless",
            "--interval",
            "0.05",
            "--db",
            str(tmp_path / "k.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    deadline = time.time() + 30
    line = ""
    while time.time() < deadline and not line.startswith("tick "):
        line = proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped after" in out and "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--headless", "--ticks", "0"),
        ("run", "--headless", "--ticks", "many"),
        ("run", "--source", "nyse"),
        ("snapshot", "--bogus"),
        ("run", "--interval", "-1"),
        ("frobnicate-not-a-command-but-an-arg",),
    ],
)
def test_bad_arguments_are_one_line_exit_2(capfd, args, tmp_path):
    assert_one_line_error(in_process(capfd, *args, "--db", str(tmp_path / "k.db")), 2)


def test_bad_config_is_one_line_exit_2(capfd, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[risk]\nmax_loss_per_trade_pct = 5\n")
    p = in_process(capfd, "snapshot", "--config", str(cfg), "--db", str(tmp_path / "k.db"))
    assert_one_line_error(p, 2)
    assert "loosens the per-trade cap" in p.stderr
    p = in_process(capfd, "snapshot", "--config", str(tmp_path / "missing.toml"), "--db", str(tmp_path / "k.db"))
    assert_one_line_error(p, 2)


def test_corrupt_db_is_refused_and_left_untouched(capfd, tmp_path):
    db = tmp_path / "k.db"
    db.write_bytes(b"this is not sqlite" * 100)
    before = db.read_bytes()
    p = in_process(capfd, "run", "--headless", "--ticks", "1", "--db", str(db))
    assert_one_line_error(p, 2)
    assert db.read_bytes() == before


def test_locked_db_is_a_runtime_error_and_loses_nothing(capfd, tmp_path):
    db = tmp_path / "k.db"
    assert in_process(capfd, "run", "--headless", "--ticks", "20", "--db", str(db)).returncode == 0
    holder = Store(db)  # another writer holds the database
    try:
        cash = holder.account().cash_cc
        p = kakashi("run", "--headless", "--ticks", "1", "--db", str(db))
        assert_one_line_error(p, 1)
        assert "already writing" in p.stderr
    finally:
        holder.close()
    s = Store(db, writer=False)
    assert s.account().cash_cc == cash
    s.close()


def test_rearm_needs_confirmation_or_yes(capfd, tmp_path):
    db = tmp_path / "k.db"
    s = Store(db)
    s.set_control(Control.KILL_SWITCH, True)
    s.set_control(Control.KILL_REASON, "operator")
    s.close()
    p = kakashi("rearm", "--db", str(db), stdin=subprocess.DEVNULL)
    assert_one_line_error(p, 2)
    p = in_process(capfd, "rearm", "--yes", "--db", str(db))
    assert p.returncode == 0 and "re-armed" in p.stdout
    s = Store(db, writer=False)
    assert s.get_control("kill_switch") == "0"
    s.close()
    assert "not thrown" in in_process(capfd, "rearm", "--yes", "--db", str(db)).stdout


def test_help_does_not_import_textual():
    code = (
        "import sys; from kakashi_tui.frontends.cli.main import build_parser; build_parser(); "
        "import kakashi_tui.trading.engine, kakashi_tui.trading.runtime; print('textual' in sys.modules)"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert p.stdout.strip() == "False"


def test_core_has_no_io_and_no_textual():
    code = (
        "import sys; import kakashi_tui.core.models, kakashi_tui.core.ev, kakashi_tui.core.fees, "
        "kakashi_tui.core.sizing, kakashi_tui.core.risk, kakashi_tui.core.strategy, kakashi_tui.core.broker, "
        "kakashi_tui.core.ledger, kakashi_tui.core.validate; "
        "print(sorted(m for m in ('textual', 'httpx', 'peewee', 'sqlite3', 'rich') if m in sys.modules))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert p.stdout.strip() == "[]", p.stderr


def test_kill_and_status_from_another_terminal(capfd, tmp_path):
    db = tmp_path / "k.db"
    assert in_process(capfd, "run", "--headless", "--ticks", "30", "--db", str(db)).returncode == 0
    p = in_process(capfd, "kill", "--db", str(db), "--reason", "cron stop")
    assert p.returncode == 0 and "kill switch thrown" in p.stdout
    p = in_process(capfd, "status", "--db", str(db))
    assert p.returncode == 0 and "kill switch THROWN" in p.stdout and "equity $" in p.stdout
    run = in_process(capfd, "run", "--headless", "--ticks", "20", "--db", str(db))
    assert "HALTED (kill switch: cron stop)" in run.stdout and " accepted) fills 0 " in run.stdout
    assert all(" fills 0 " in ln for ln in run.stdout.splitlines() if ln.startswith("tick "))
    assert_one_line_error(in_process(capfd, "kill", "--db", str(tmp_path / "none.db")), 2)
    assert not (tmp_path / "none.db").exists()


def test_a_running_engine_adopts_an_external_kill(capfd, tmp_path):
    from tests.conftest import make_engine

    e = make_engine(tmp_path / "k.db")
    e.tick()
    assert in_process(capfd, "kill", "--db", str(tmp_path / "k.db")).returncode == 0  # while this engine holds the DB
    for _ in range(30):
        rep = e.tick()
        assert rep.fills == 0 and all(not d.accepted for d in rep.decisions)
    assert e.killed and "HALTED" in e.state_label()
    p = in_process(capfd, "rearm", "--yes", "--db", str(tmp_path / "k.db"))
    assert_one_line_error(p, 1)
    assert "re-arm from its desk" in p.stderr
    e.store.close()


def test_an_unexpected_error_is_one_line_and_the_traceback_goes_to_a_file(monkeypatch, capsys, tmp_path):
    from kakashi_tui.frontends.cli import main as cli

    def boom(args):
        raise RuntimeError("a bug we did not foresee")

    monkeypatch.setattr(cli, "cmd_status", boom)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    assert cli.main(["status", "--db", str(tmp_path / "k.db")]) == 70
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kakashi: internal error: RuntimeError: a bug we did not foresee")
    logs = list(tmp_path.glob("kakashi-crash-*.log"))
    assert len(logs) == 1 and "Traceback" in logs[0].read_text() and "boom" in logs[0].read_text()


def test_pause_and_resume_from_another_terminal_reach_a_running_engine(capfd, tmp_path):
    from tests.conftest import make_engine

    db = tmp_path / "k.db"
    e = make_engine(db)
    e.tick()
    p = in_process(capfd, "pause", "--db", str(db))  # while this engine holds the DB: a request row
    assert p.returncode == 0 and "next tick" in p.stdout, p.stderr
    assert "1 request(s) pending" in in_process(capfd, "status", "--db", str(db)).stdout
    assert e.tick().decisions == () and e.paused and e.state_label() == "PAUSED"
    st = in_process(capfd, "status", "--db", str(db)).stdout
    assert "| paused" in st and "pending" not in st
    assert in_process(capfd, "resume", "--db", str(db)).returncode == 0
    e.tick()
    assert not e.paused
    e.store.close()


def test_a_headless_run_ends_0_while_another_process_kills_and_reads(capfd, tmp_path):
    db = tmp_path / "k.db"
    assert in_process(capfd, "run", "--headless", "--ticks", "5", "--db", str(db)).returncode == 0
    run = subprocess.Popen(
        [sys.executable, "-m", "kakashi_tui", "run", "--headless", "--ticks", "150", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    for i in range(4):
        assert in_process(capfd, "kill", "--db", str(db), "--reason", f"side {i}").returncode == 0
        assert in_process(capfd, "status", "--db", str(db)).returncode == 0
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert "stopped after 150 ticks" in out and "failed" not in out and "tick failed" not in err


def test_ticker_narrows_the_simulator_and_series_is_refused_there(capfd, tmp_path):
    p = in_process(
        capfd, "snapshot", "--ticker", "SIM-7-0002", "--ticker", "SIM-7-0005", "--db", str(tmp_path / "k.db")
    )
    assert p.returncode == 0, p.stderr
    saved = sorted(ln.split()[-1] for ln in p.stdout.splitlines() if ln.startswith("Snapshot saved for"))
    assert saved == ["SIM-7-0002", "SIM-7-0005"]
    refused = in_process(capfd, "snapshot", "--series", "KXHIGHNY", "--db", str(tmp_path / "k2.db"))
    assert_one_line_error(refused, 2)
    assert "--series" in refused.stderr and not (tmp_path / "k2.db").exists()


def test_status_shows_what_stops_trading_and_whether_an_engine_runs(capfd, tmp_path):
    db = str(tmp_path / "k.db")
    assert in_process(capfd, "run", "--headless", "--ticks", "2", "--db", db).returncode == 0
    p = in_process(capfd, "--db", db, "status")  # a common option before the subcommand works too
    assert p.returncode == 0, p.stderr
    assert "kill switch armed | not paused | daily stop not hit | engine not running" in p.stdout
    s = Store(db)  # an engine's writer lock on the file
    try:
        s.set_control("daily_stop_day", "2030-01-01")
        p = kakashi("status", "--db", db)
        assert "engine RUNNING on this database" in p.stdout and "daily stop not hit" in p.stdout
        day = s.db.execute_sql("SELECT MAX(ts) FROM ticks").fetchone()[0]
        from kakashi_tui.trading.engine import utc_day

        s.set_control("daily_stop_day", utc_day(day))
    finally:
        s.close()
    (tmp_path / "empty.toml").write_text("")
    assert (
        "daily stop HIT today (no new trades until 00:00 UTC)"
        in in_process(capfd, "--config", str(tmp_path / "empty.toml"), "--db", db, "status").stdout
    )


def test_common_options_before_the_subcommand(capfd, tmp_path):
    db = str(tmp_path / "k.db")
    assert in_process(capfd, "--db", db, "snapshot").returncode == 0
    assert in_process(capfd, "--db", db, "kill", "--reason", "x").returncode == 0
    assert "THROWN (x)" in in_process(capfd, "--db", db, "status").stdout
    p = in_process(capfd, "--db", db, "report", "--until", "2000-01-01")
    assert_one_line_error(p, 2)


def test_headless_writes_the_daily_summary_at_the_day_roll(capfd, tmp_path):
    cfg = tmp_path / "k.toml"
    cfg.write_text(f'[sim]\nstep_seconds = 3600\n[desk]\nreports_dir = "{tmp_path / "reports"}"\n')
    db = str(tmp_path / "k.db")
    p = in_process(capfd, "run", "--headless", "--ticks", "30", "--db", db, "--config", str(cfg), "--seed", "7")
    assert p.returncode == 0, p.stderr
    written = [ln for ln in p.stdout.splitlines() if "post-mortem written to" in ln]
    assert written and "summary post-mortem written to" in written[0]
    days = sorted((tmp_path / "reports" / "daily").iterdir())
    assert days and days[0].read_text().count("\n") == 1


def test_a_feed_warning_is_said_with_one_prefix(capsys):
    from kakashi_tui.trading.runtime import warn

    warn("warning: Kalshi markets capped at 10 in memory")
    warn("books need a key")
    assert capsys.readouterr().err.splitlines() == [
        "kakashi: warning: Kalshi markets capped at 10 in memory",
        "kakashi: warning: books need a key",
    ]


def test_a_headless_restart_says_what_it_restored_once(capfd, tmp_path):
    """#19 item 4: a restarted run says, once and in plain words, what it resumed: the state and
    since when, the open positions, today's PnL against the daily cap, and the last tick."""
    db = str(tmp_path / "k.db")
    first = in_process(capfd, "run", "--headless", "--ticks", "40", "--db", db, "--seed", "7")
    assert first.returncode == 0, first.stderr
    assert "resumed:" not in first.stdout  # a new database resumes nothing
    assert in_process(capfd, "kill", "--db", db, "--reason", "lunch").returncode == 0
    again = in_process(capfd, "run", "--headless", "--ticks", "1", "--db", db, "--seed", "7")
    said = [ln for ln in again.stdout.splitlines() if ln.startswith("kakashi: resumed:")]
    assert len(said) == 1, again.stdout
    line = said[0]
    assert line.startswith("kakashi: resumed: HALTED (kill switch: lunch) since 20")
    assert "; `kakashi rearm` re-arms | " in line and " open position" in line and "(daily cap $" in line
    assert line.endswith("(#40)") and "| last tick 20" in line
