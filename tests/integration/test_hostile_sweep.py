"""The hostile re-sweep of issue #20 against the code as merged: each case here is one that broke
(an exit 70, a hang, a wrong balance accepted) and is kept as a test. Real SQLite files, the real
CLI (in-process, or in a subprocess with a timeout where a hang is the failure).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from kakashi_tui.adapters.store.chain import head_path
from tests.clirun import in_process

from .test_hostile import one_line, run_cli
from .test_ledger_chain import edit as _edit
from .test_ledger_chain import refused_everywhere


@pytest.fixture(scope="module")
def traded(tmp_path_factory) -> Path:
    """A simulator run with fills, paid settlements and open positions (and its ledger head)."""
    from tests.conftest import make_engine

    path = tmp_path_factory.mktemp("sweep") / "k.db"
    e = make_engine(path)
    for _ in range(200):
        e.tick()
    e.store.close()
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT COUNT(*) FROM ledger WHERE kind = 'settle' AND amount_cc > 0").fetchone()[0] >= 2
        held = c.execute("SELECT ticker, side FROM ledger GROUP BY ticker, side HAVING SUM(contracts_hundredths) > 0")
        assert held.fetchall()
    return path


def copy(traded: Path, tmp_path: Path, name: str = "t.db") -> Path:
    db = tmp_path / name
    shutil.copy(traded, db)
    shutil.copy(head_path(traded), head_path(db))
    return db


PAID = "(SELECT MIN(id) FROM ledger WHERE kind = 'settle' AND amount_cc > 0)"
HELD = (
    "(SELECT ticker FROM ledger WHERE kind IN ('buy', 'settle') GROUP BY ticker, side"
    " HAVING SUM(contracts_hundredths) > 0 LIMIT 1)"
)


def edit(db: Path, *sql: str, forge: bool = False) -> None:
    """test_ledger_chain's edit, a schema statement (DROP INDEX) allowed among the row edits."""
    ddl = [q for q in sql if q.startswith("DROP ")]
    if ddl:
        with sqlite3.connect(db) as c:
            for q in ddl:
                c.execute(q)
        c.close()
    _edit(db, *(q for q in sql if q not in ddl), forge=forge)


ONE_HELD = f"FROM ledger WHERE ticker = {HELD} LIMIT 1"
NEW_ENTRY = "INSERT INTO ledger (ts, kind, ticker, side, contracts_hundredths, amount_cc, key, chain)"


# -- 1. the reconciliation: a ledger edit whose chain and head were forged ---------------------------
@pytest.mark.parametrize(
    "sql, expected",
    [
        (  # half a paid settlement: the other half of the position left open, cash lower
            [
                f"UPDATE ledger SET contracts_hundredths = contracts_hundredths / 2, amount_cc = amount_cc / 2"
                f" WHERE id = {PAID}"
            ],
            " while ",
        ),
        (  # a paid settlement deleted: the position back open, its payout gone
            [f"DELETE FROM ledger WHERE id = {PAID}"],
            "is still held, though its result was recorded after it was bought",
        ),
        (  # a fill charged twice (the unique index dropped first)
            [
                "DROP INDEX ledger_key",
                f"{NEW_ENTRY} SELECT ts, kind, ticker, side, contracts_hundredths, amount_cc, key, '' FROM ledger"
                " WHERE key IN ('fill:1:cost', 'fill:1:fee')",
            ],
            "its key 'fill:1:cost' repeats entry ",
        ),
        (  # a sale no fill made, under a key that does not start with fill:
            [f"{NEW_ENTRY} SELECT ts, 'sell', ticker, side, -1, 5000000, 'bonus:1', '' {ONE_HELD}"],
            "bonus:1 has no fill row",
        ),
        (  # a buy no fill made
            [f"{NEW_ENTRY} SELECT ts, 'buy', ticker, side, 100, 10, 'gift:1', '' {ONE_HELD}"],
            "gift:1 has no fill row",
        ),
        (  # the start's deposit event deleted, then the deposit doubled
            ["DELETE FROM events WHERE kind = 'deposit'", "UPDATE ledger SET amount_cc = amount_cc * 2 WHERE id = 1"],
            "the start recorded no deposit",
        ),
        (  # the deposit and its event both gone: the bankroll vanishes from cash
            ["DELETE FROM events WHERE kind = 'deposit'", "DELETE FROM ledger WHERE kind = 'deposit'"],
            "the ledger does not begin with the start's deposit",
        ),
    ],
    ids=[
        "half-settlement",
        "deleted-settlement",
        "fill-twice",
        "sale-without-fill",
        "buy-without-fill",
        "deposit-event-gone",
        "deposit-gone",
    ],
)
def test_a_forged_ledger_edit_that_moves_money_is_refused_by_the_reconciliation(
    traded, tmp_path, capsys, sql, expected
):
    """On the merged code each of these passed `status` and the report (exit 0, a changed cash
    or position shown as reconciled): the reconciliation looked only at entries keyed fill:, by
    a dict that kept one of two equal keys, at what settlements paid but not what they closed,
    and at the first entry only when the start's deposit event was there."""
    db = copy(traded, tmp_path)
    edit(db, *sql, forge=True)
    refused_everywhere(capsys, tmp_path, db, expected)


def test_a_deleted_last_settlement_without_a_head_is_refused_not_reconciled(traded, tmp_path, capsys):
    """No head file (a copy, or the head deleted too): the deleted tail is not seen by the chain,
    but the position its result paid is still open, and that the reconciliation sees."""
    db = copy(traded, tmp_path)
    last = "(SELECT MAX(id) FROM ledger WHERE kind = 'settle' AND amount_cc > 0)"
    edit(db, f"DELETE FROM ledger WHERE id >= {last}")
    head_path(db).unlink()
    refused_everywhere(capsys, tmp_path, db, "is still held, though its result was recorded")


def test_an_untouched_ledger_still_reconciles(traded, tmp_path, capsys):
    db = copy(traded, tmp_path)
    code, out, err = run_cli(capsys, "status", "--db", str(db))
    assert code == 0 and "hash chain intact, reconciled" in out, err
    code, _out, err = run_cli(capsys, "report", "--db", str(db), "--out", str(tmp_path / "rep"), "--no-charts")
    assert code == 0, err
    _ = one_line  # (imported for the cases below)


def test_a_database_from_before_schema_4_keeps_its_deposit_event_in_cents_and_reconciles(tmp_path, capsys):
    """The engine recorded the start's deposit as bare cents before schema 4 ("100000"), and
    migration kept the text: such an honest file was refused as `corrupt database: ... the first
    deposit is 10000000 cc, the start recorded 100000`."""
    from kakashi_tui.adapters.store.writer import Store

    from .test_migration import make_v3

    db = tmp_path / "old.db"
    make_v3(db)  # its deposit event: '100000' (cents)
    Store(db).close()  # migrated by the writer, as `kakashi run` would
    code, out, err = run_cli(capsys, "status", "--db", str(db))
    assert code == 0 and "reconciled with fills, results and the first deposit" in out, err
    with sqlite3.connect(db) as c:
        c.execute("UPDATE events SET detail = '100001' WHERE kind = 'deposit'")
    c.close()
    code, _out, err = run_cli(capsys, "status", "--db", str(db))
    assert code == 1 and "the first deposit is 10000000 cc, the start recorded '100001'" in one_line(err)


# -- 2. TOML nested past Python's recursion limit, or an integer of 5,000 digits ----------------------
NESTED_TOML = "x = " + "[" * 5000 + "]" * 5000 + "\n"


@pytest.mark.parametrize(
    "text, why",
    [
        (NESTED_TOML, "nested too deeply"),
        ("x = " + "{a = " * 2000 + "1" + "}" * 2000 + "\n", "nested too deeply"),
        ("bankroll = 1" + "0" * 5000 + "\n", "Exceeds the limit (4300 digits) for integer string conversion"),
    ],
    ids=["arrays", "inline-tables", "5000-digits"],
)
def test_a_config_nested_too_deep_or_too_long_a_number_is_refused_in_one_line(tmp_path, capsys, text, why):
    """On the merged code the nested ones exited 70 (RecursionError out of tomllib)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    code, _out, err = run_cli(capsys, "run", "--headless", "--ticks", "1", "--config", str(cfg), "--db", "k.db")
    line = one_line(err)
    assert code == 2 and f"kakashi: error: config {cfg} is not valid TOML: {why}" in line, line
    assert "set_int_max_str_digits" not in line


@pytest.mark.parametrize(
    "line, why",
    [
        ("KXA = " + "[" * 5000 + "]" * 5000, "KXA: p_hat is not a number (nested too deeply)"),
        ("KXA = 1" + "0" * 5000, "KXA: p_hat is not a number (Exceeds the limit (4300 digits)"),
    ],
    ids=["nested", "5000-digits"],
)
def test_a_beliefs_line_nested_too_deep_is_one_refused_line_at_start_and_mid_run(tmp_path, line, why):
    """parse_beliefs "never raises": a nested line raised RecursionError (and 5,000 digits a
    ValueError), which exited 70 at start-up and would have stopped a running engine's tick."""
    from kakashi_tui.adapters.beliefs import BeliefsFile, parse_beliefs

    path = tmp_path / "b.toml"
    path.write_text("[beliefs]\nKXA = 0.4\nKXB = 0.6\n")
    b = BeliefsFile(path)
    path.write_text(f"[beliefs]\n{line}\nKXB = 0.7\n")
    parsed = parse_beliefs(path)
    assert [p.reason for p in parsed.problems] and why in parsed.problems[0].reason, parsed.problems
    assert str(parsed.beliefs["KXB"]) == "0.7"
    est = {e.ticker: str(e.p_hat) for e in b.estimates(["KXA", "KXB"], 2)}  # a running engine's reload
    assert est == {"KXA": "0.4", "KXB": "0.7"}  # the bad line's last good p_hat kept


# -- 3. stored JSON nested past the recursion limit; a stored price outside [0, 1] -------------------
def test_a_ledger_head_of_nested_brackets_is_not_one_kakashi_wrote(traded, tmp_path, capsys):
    """4 KiB of "[" (the head's size limit) raised RecursionError out of json.loads: every
    command that opens the database exited 70."""
    db = copy(traded, tmp_path)
    head_path(db).write_text("[" * 4000)
    for args in (("status",), ("run", "--headless", "--ticks", "1"), ("kill", "--reason", "x")):
        code, _out, err = run_cli(capsys, *args, "--db", str(db))
        line = one_line(err)
        assert code == 1 and f"corrupt database: the ledger head {head_path(db)} is not one Kakashi wrote" in line


HELD_SNAPSHOTS = f"UPDATE snapshots SET {{}} WHERE ticker IN {HELD.replace(' LIMIT 1', '')}"


@pytest.mark.parametrize(
    "change, why",
    [
        ("book = '" + "[" * 50000 + "'", "maximum recursion depth"),
        ('book = \'{"yes": ' + "[" * 50000 + "'", "maximum recursion depth"),
        ("yes_bid_cc = 900000000000, yes_ask_cc = 900000000001", "price 900000000000 cc is outside [0, 1]"),
        ("yes_bid_cc = -5, yes_ask_cc = -3", "price -5 cc is outside [0, 1]"),
        ('book = \'{"yes": [["-5", "100"]], "no": [["7", "100"]]}\'', "price -50000 cc is outside [0, 1]"),
        (
            'book = \'{"yes": [["0.5", "99999999999999999999"]], "no": []}\'',
            "count 99999999999999999999 is outside",
        ),
    ],
    ids=["nested-book", "nested-side", "bid-1e11", "bid-negative", "book-price-7", "book-qty-1e20"],
)
def test_a_held_markets_stored_quote_kakashi_cannot_have_written_is_corrupt_not_a_mark(
    traded, tmp_path, capsys, change, why
):
    """The mark of a held position is its market's last stored quote. On the merged code a nested
    book exited 70 (RecursionError), a price past 1 exited 70 (IndexError), and a negative price
    (GRID[-5]) or a book level priced $7 were used as the mark: `status` showed equity $1,509
    on a $992 account, and `run` sized trades on it."""
    db = copy(traded, tmp_path)
    edit(db, HELD_SNAPSHOTS.format(change))
    for args in (("status",), ("run", "--headless", "--ticks", "1")):
        code, _out, err = run_cli(capsys, *args, "--db", str(db))
        line = one_line(err)
        assert code == 1 and "corrupt database: snapshots row (latest of " in line and why in line, (args, line)
    code, _out, err = run_cli(capsys, "report", "--db", str(db), "--out", str(tmp_path / "rep"), "--no-charts")
    assert code == 1 and "corrupt database: snapshots row" in one_line(err)


# -- 4. a JSONL record nested within orjson's limit (1,024) but past Python's -------------------------
def test_a_replay_record_nested_a_thousand_deep_is_one_rejected_row_not_exit_70(tmp_path, capsys):
    """orjson parses up to 1,024 levels; repr() and json.dumps of such a record (its rejection
    reason, its stored payload) ran out of recursion: `replay --input` and `catalog import
    --input` exited 70 on one such line."""
    import json

    deep = "[" * 1020 + "]" * 1020

    def book(best: int) -> list[list[str]]:
        return [[f"0.{best - i:02d}", "1"] for i in range(40)]

    good = {"type": "snapshot", "ticker": "T", "ts": 1767571260000, "yes_bid": "0.40", "yes_ask": "0.45"}
    lines = [
        json.dumps(good),
        json.dumps({**good, "ts": 1767571320000})[:-1] + f', "book": {{"yes": {deep}}}}}',
        '{"type": ' + deep + "}",
        json.dumps({**good, "ts": 1767571380000, "book": {"yes": book(40), "no": book(55)}}),  # 40 levels: not deep
    ]
    src = tmp_path / "r.jsonl"
    src.write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(capsys, "replay", "--input", str(src), "--db", str(tmp_path / "r.db"))
    assert code == 0 and "replayed 2 ticks" in out and "rejected rows 2 " in out, (out, err)  # lines 1 and 4
    with sqlite3.connect(tmp_path / "r.db") as c:
        reasons = sorted(r for (r,) in c.execute("SELECT reason FROM rejected_rows"))
        assert reasons == ["line 2: nested deeper than 32 levels", "line 3: nested deeper than 32 levels"]
    c.close()
    code, out, err = run_cli(capsys, "catalog", "import", "--input", str(src), "--catalog", str(tmp_path / "cat"))
    assert code == 0 and "Traceback" not in err, err


# -- 5. the simulator's control rows: a value its config cannot give is corrupt ----------------------
@pytest.mark.parametrize(
    "key, value, why",
    [
        ("sim_markets", "0", "value 0 is outside 1..5000"),  # exit 70: "the simulator needs at least one market"
        ("sim_markets", "-5", "value -5 is outside 1..5000"),
        ("sim_markets", "1000000000", "value 1000000000 is outside 1..5000"),  # built 10^9 markets: a hang
        ("sim_step_ms", "9223372036854775807", "is outside 1..86400000"),  # exit 70: OverflowError
        ("sim_step_ms", "-60000", "value -60000 is outside 1..86400000"),  # the clock ran backwards
        ("sim_start_ms", "9223372036854775807", "is outside 1..253402300799999"),  # exit 70: OverflowError
        ("sim_start_ms", "-9223372036854775808", "is outside 1..253402300799999"),  # exit 70: year out of range
        ("tick_count", "9223372036854775807", "is outside 0..9007199254740991"),  # every tick failed: overflow
        ("sim_tick", "4000000000000", "the simulator's clock at tick 4000000000000 is past year 9999"),
    ],
)
@pytest.mark.timeout(60)  # sim_tick 2^63 (or 4e12) was fast-forwarded one step at a time: a hang
def test_a_simulator_control_row_it_cannot_have_written_is_corrupt_not_a_crash_or_a_hang(
    traded, tmp_path, capfd, key, value, why
):
    db = copy(traded, tmp_path)
    edit(db, f"UPDATE control SET value = '{value}' WHERE key = '{key}'")
    before = db.read_bytes()
    for args in (("run", "--headless", "--ticks", "1"), ("status",)):
        p = in_process(capfd, *args, "--db", str(db))
        line = one_line(p.stderr)
        assert p.returncode == 1 and f"corrupt database: control row '{key}': " in line and why in line, (args, line)
    assert db.read_bytes() == before


# -- 6. the report: a time it cannot print, a figure that is not finite -------------------------------
@pytest.mark.parametrize(
    "sql, expected",
    [
        ("UPDATE fills SET ts = 9223372036854775807 WHERE id = 1", "fills row 1: ts is '9223372036854775807', not a"),
        ("UPDATE fills SET ts = -1 WHERE id = 1", "fills row 1: ts is '-1', not a time in epoch ms"),
        ("UPDATE decisions SET ev = -9e999", "decision ev is '-inf', not a number"),
        (
            "INSERT INTO events (ts, kind, detail) VALUES (99999999999999999, 'kill_switch', 'x')",
            "ts is '99999999999999999', not a time",
        ),
        ("UPDATE outcomes SET ts = 9223372036854775807", "ts is '9223372036854775807', not a time"),
        ("UPDATE decisions SET ts = 9223372036854775807 WHERE accepted = 0", "ts is '9223372036854775807', not a time"),
    ],
    ids=["fill-ts-int64", "fill-ts-negative", "ev-inf", "event-ts", "outcome-ts", "refused-decision-ts"],
)
def test_the_report_refuses_a_time_it_cannot_print_or_an_infinite_figure(traded, tmp_path, capsys, sql, expected):
    """On the merged code a fill time of 2^63-1 exited 70 (ValueError: year 292278994 is out of
    range, printing it) and an ev of -inf exited 70 (OverflowError: int(round(-inf)))."""
    db = copy(traded, tmp_path)
    edit(db, sql)
    code, _out, err = run_cli(capsys, "report", "--db", str(db), "--out", str(tmp_path / "rep"), "--no-charts")
    line = one_line(err)
    assert code == 1 and line.startswith("kakashi: error: corrupt database: ") and expected in line, line


def test_the_desks_rejected_rows_screen_reads_a_payload_nested_too_deep(traded, tmp_path):
    """A rejected row without a ticker shows the one its payload names; a payload of nested
    brackets raised RecursionError out of the desk's lookup (the screen crashed the desk)."""
    from kakashi_tui.adapters.queries import connect_readonly
    from kakashi_tui.frontends.desk.lookups import rejected_rows

    db = copy(traded, tmp_path)
    edit(
        db,
        "INSERT INTO rejected_rows (source, ticker, reason, count, first_seen, last_seen, payload)"
        " VALUES ('replay', '', 'line 9: x', 1, 1, 1, '" + "[" * 100_000 + "')",
    )
    con = connect_readonly(db)
    try:
        rows, total = rejected_rows(con)
    finally:
        con.close()
    assert total >= 1 and any(r[3] == "line 9: x" and r[1] == "" for r in rows)


# -- 7. a schema version set back by hand must not re-link an edited ledger ---------------------------
@pytest.mark.parametrize("version", ["4", "0"])
def test_a_chained_ledger_with_its_schema_version_set_back_is_refused_untouched(traded, tmp_path, capsys, version):
    """On the merged code `run` migrated such a file again: step 5 re-linked every entry, an
    edited one included, and appended a second chain note; the run then stopped on the head, but
    the edit now had a valid link (delete the head and it opened)."""
    db = copy(traded, tmp_path)
    edit(
        db,
        f"UPDATE control SET value = '{version}' WHERE key = 'schema_version'",
        f"UPDATE ledger SET amount_cc = amount_cc - 1 WHERE id = {PAID}",
    )
    before = db.read_bytes()
    code, _out, err = run_cli(capsys, "run", "--headless", "--ticks", "1", "--db", str(db))
    line = one_line(err)
    assert code == 1 and "corrupt database: control row 'schema_version': says before 5" in line, line
    assert db.read_bytes() == before
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        assert c.execute("SELECT COUNT(*) FROM ledger WHERE kind = 'note'").fetchone()[0] == 0
    c.close()


# -- 8. a trigger or view planted in the file --------------------------------------------------------
@pytest.mark.parametrize(
    "sql, what",
    [
        (  # deletes the newest ledger entry whenever a tick is written: data lost inside `run`
            "CREATE TRIGGER eat AFTER INSERT ON ticks BEGIN DELETE FROM ledger WHERE id = (SELECT MAX(id) FROM ledger);"
            " END",
            "a trigger 'eat'",
        ),
        (  # a view standing in for the ledger: what status reads is whatever the view selects
            "ALTER TABLE ledger RENAME TO ledger_kept; CREATE VIEW ledger AS SELECT * FROM ledger_kept",
            "a view 'ledger'",
        ),
    ],
    ids=["trigger", "view"],
)
def test_a_planted_trigger_or_view_is_refused_by_every_command_and_left_untouched(traded, tmp_path, capsys, sql, what):
    """Kakashi creates neither. On the merged code `run` opened the file with the trigger and
    it deleted ledger entries inside the engine's own transactions (exit 0; seen only at the
    next start), and `status` and the report read the view as the ledger."""
    db = copy(traded, tmp_path)
    with sqlite3.connect(db) as c:
        c.executescript(sql)
    c.close()
    before = db.read_bytes()
    for args in (
        ("run", "--headless", "--ticks", "3", "--db", str(db)),
        ("status", "--db", str(db)),
        ("report", "--db", str(db), "--out", str(tmp_path / "rep"), "--no-charts"),
        ("replay", "--from-db", str(db), "--db", str(tmp_path / "r.db")),
    ):
        code, _out, err = run_cli(capsys, *args)
        line = one_line(err)
        assert code == 2 and f"{db} holds {what}, which Kakashi never creates; left untouched" in line, (args, line)
    assert db.read_bytes() == before


# -- 9. a catalog segment whose ts is a float ---------------------------------------------------------
def test_a_catalog_segment_with_float_times_is_refused_not_a_self_corrupt_database(tmp_path, capsys):
    """`catalog info` refused a segment whose ts is double ("not integer epoch ms"), but the
    replay took its start from it: coalesce(recv_ts, ts) came out double, the first deposit was
    hashed at ts 1767571200000.0 and stored (INTEGER affinity) as 1767571200000, and the replay's
    own new database failed its chain: `corrupt database: ledger entry 1: its hash does not
    match` (exit 1 after writing it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kakashi_tui.adapters.catalog import CatalogWriter
    from tests.conftest import SIM_START_MS

    root = tmp_path / "c"
    w = CatalogWriter(root)
    for i in range(3):
        w.add_snapshot_row(SIM_START_MS + i * 1000, "KXA-1", 4200, 4500, None, 0, [], [], "s", SIM_START_MS + i * 1000)
    w.close()
    seg = next((root / "snapshots").glob("date=*/*.parquet"))
    t = pq.read_table(seg)
    t = t.set_column(t.schema.get_field_index("ts"), "ts", pa.array([1.5e300] * t.num_rows))
    pq.write_table(t, seg)
    code, _out, err = run_cli(capsys, "replay", "--catalog", str(root), "--db", str(tmp_path / "r.db"))
    line = one_line(err)
    assert code == 1 and f"{seg.name} is unreadable: its ts is double, not integer epoch ms" in line, line
    code, _out, err = run_cli(capsys, "catalog", "info", "--catalog", str(root))
    assert code == 1 and "its ts is double, not integer epoch ms" in err


def test_catalog_info_escapes_a_date_folder_named_with_control_characters(tmp_path, capsys):
    """A folder `date=<ESC>[2J...` among the dates was printed raw by `catalog info` (the day
    column is the folder's name): it cleared the screen and forged a line."""
    import shutil

    from kakashi_tui.adapters.catalog import CatalogWriter
    from tests.conftest import SIM_START_MS

    root = tmp_path / "c"
    w = CatalogWriter(root)
    w.add_snapshot_row(SIM_START_MS, "KXA-1", 4200, 4500, None, 0, [], [], "s")
    w.close()
    seg = next((root / "snapshots").glob("date=*/*.parquet"))
    odd = root / "snapshots" / "date=\x1b[2J\rforged\n"
    odd.mkdir()
    shutil.copy(seg, odd / seg.name)
    code, out, err = run_cli(capsys, "catalog", "info", "--catalog", str(root))
    assert code == 0, err
    for bad in ("\x1b", "\r"):
        assert bad not in out + err
    assert not any(ln.startswith("forged") for ln in out.splitlines())
    assert "\\x1b[2J\\rforged\\n" in out


@pytest.mark.timeout(60)
def test_a_large_in_range_sim_tick_is_refused_not_replayed_for_hours(traded, tmp_path, capfd):
    """A sim_tick edited to 10^8 (inside its range, the clock before year 10000) was replayed a
    step at a time at start-up (~100 us a step: hours). It is now held to the simulator's last
    recorded pass and refused as corrupt at once, the file untouched."""
    db = copy(traded, tmp_path)
    edit(db, "UPDATE control SET value = '100000000' WHERE key = 'sim_tick'")
    before = db.read_bytes()
    p = in_process(capfd, "run", "--headless", "--ticks", "1", "--db", str(db))
    assert p.returncode == 1, p.stderr
    err = p.stderr.strip()
    assert err.startswith("kakashi: ") and len(err.splitlines()) == 1, err
    assert "corrupt database" in err and "sim_tick" in err and "last recorded pass" in err
    assert db.read_bytes() == before


def test_a_resumed_sim_run_passes_the_sim_tick_bound(traded, tmp_path, capsys):
    """The bound never refuses a file Kakashi wrote: the traded run resumes, ticks, and the
    stored tick stays within SIM_TICK_SLACK of the newest record (a quiet spell cannot push it
    past)."""
    import sqlite3

    from kakashi_tui.adapters.store.controls import SIM_TICK_SLACK, last_sim_pass

    db = copy(traded, tmp_path)
    code, _out, err = run_cli(capsys, "run", "--headless", "--ticks", "30", "--db", str(db))
    assert code == 0, err
    con = sqlite3.connect(db)
    c = dict(con.execute("SELECT key, value FROM control WHERE key LIKE 'sim_%'").fetchall())
    last = last_sim_pass(con, int(c["sim_start_ms"]), int(c["sim_step_ms"]))
    assert last is not None and 0 <= int(c["sim_tick"]) - last <= SIM_TICK_SLACK
    con.close()


# -- 10. a named pipe where the log goes --------------------------------------------------------------
@pytest.mark.parametrize("named", [True, False], ids=["--log", "kakashi.log-beside-the-db"])
def test_a_pipe_where_the_log_goes_is_refused_at_once_not_waited_on(tmp_path, named):
    """Opening a pipe for writing waits for a reader: `run --headless --log PIPE` (or a pipe named
    kakashi.log beside the database) hung before its first tick on the merged code."""
    import os
    import subprocess
    import sys

    from tests.clirun import ENV

    log = tmp_path / ("l.log" if named else "kakashi.log")
    os.mkfifo(log)
    p = subprocess.run(
        [sys.executable, "-m", "kakashi_tui", "run", "--headless", "--ticks", "1", "--db", str(tmp_path / "k.db")]
        + (["--log", str(log)] if named else []),
        capture_output=True,
        text=True,
        timeout=30,
        env=ENV,
    )
    assert p.returncode == 1 and f"cannot write a log into a named pipe: {log}" in one_line(p.stderr), p.stderr
    assert not (tmp_path / "k.db").exists()


@pytest.mark.parametrize("side, kind", [("-wal", "fifo"), ("-shm", "fifo"), ("-wal", "dir")])
def test_a_wal_or_shm_that_is_not_a_file_is_refused_at_open_not_a_run_of_failed_ticks(
    traded, tmp_path, capsys, side, kind
):
    """A pipe named k.db-wal: on the merged code `run` opened the database and every tick failed
    ("cannot rollback - no transaction is active"), and the run still exited 0 having traded
    nothing ("stopped after 0 ticks (2 failed)")."""
    import os

    db = copy(traded, tmp_path)
    odd = Path(f"{db}{side}")
    os.mkfifo(odd) if kind == "fifo" else odd.mkdir()
    before = db.read_bytes()
    code, _out, err = run_cli(capsys, "run", "--headless", "--ticks", "2", "--db", str(db))
    words = "not a regular file (a named pipe)" if kind == "fifo" else "Is a directory"
    assert code == 2 and f"cannot open database {db}: {odd}: {words}; left untouched" in one_line(err)
    assert db.read_bytes() == before
