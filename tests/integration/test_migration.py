"""A schema-3 database (REAL prices, cents, whole counts, one rejected row per sighting) opens
as schema 4 with every row kept and converted exactly; a second open changes nothing."""

import sqlite3
from decimal import Decimal as D

from kakashi_tui.adapters.store.chain import head_path
from kakashi_tui.adapters.store.migrations import SCHEMA_VERSION
from kakashi_tui.adapters.store.rows import verify_ledger
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.models import MarketStatus, Side

V3 = """
CREATE TABLE "control" ("key" VARCHAR(255) NOT NULL PRIMARY KEY, "value" TEXT NOT NULL);
CREATE TABLE "decisions" ("id" INTEGER NOT NULL PRIMARY KEY, "ts" INTEGER NOT NULL, "tick" INTEGER NOT NULL,
 "ticker" VARCHAR(255) NOT NULL, "side" VARCHAR(255) NOT NULL, "contracts" INTEGER NOT NULL, "limit_price" REAL NOT NULL,
 "best_ask" REAL NOT NULL, "p_hat" REAL NOT NULL, "ev" REAL NOT NULL, "worst_case_cents" INTEGER NOT NULL,
 "equity_cents" INTEGER NOT NULL, "accepted" INTEGER NOT NULL, "reason" TEXT NOT NULL);
CREATE INDEX "decisions_ts" ON "decisions" ("ts");
CREATE INDEX "decisions_ticker" ON "decisions" ("ticker");
CREATE TABLE "estimates" ("id" INTEGER NOT NULL PRIMARY KEY, "ticker" VARCHAR(255) NOT NULL, "ts" INTEGER NOT NULL,
 "p_hat" REAL NOT NULL, "source" VARCHAR(255) NOT NULL);
CREATE TABLE "events" ("id" INTEGER NOT NULL PRIMARY KEY, "ts" INTEGER NOT NULL, "kind" VARCHAR(255) NOT NULL,
 "detail" TEXT NOT NULL);
CREATE TABLE "fills" ("id" INTEGER NOT NULL PRIMARY KEY, "decision_id" INTEGER, "ts" INTEGER NOT NULL,
 "ticker" VARCHAR(255) NOT NULL, "side" VARCHAR(255) NOT NULL, "action" VARCHAR(255) NOT NULL,
 "requested" INTEGER NOT NULL, "contracts" INTEGER NOT NULL, "cost_cents" INTEGER NOT NULL, "fee_cents" INTEGER NOT NULL,
 "levels" TEXT NOT NULL);
CREATE UNIQUE INDEX "fills_decision_id" ON "fills" ("decision_id");
CREATE TABLE "ledger" ("id" INTEGER NOT NULL PRIMARY KEY, "ts" INTEGER NOT NULL, "kind" VARCHAR(255) NOT NULL,
 "ticker" VARCHAR(255) NOT NULL, "side" VARCHAR(255), "contracts" INTEGER NOT NULL, "amount_cents" INTEGER NOT NULL,
 "key" VARCHAR(255) NOT NULL);
CREATE UNIQUE INDEX "ledger_key" ON "ledger" ("key");
CREATE TABLE "markets" ("ticker" VARCHAR(255) NOT NULL PRIMARY KEY, "title" TEXT NOT NULL, "series" VARCHAR(255) NOT NULL,
 "event_ticker" VARCHAR(255) NOT NULL, "status" VARCHAR(255) NOT NULL, "open_ts" INTEGER, "close_ts" INTEGER,
 "result" VARCHAR(255), "updated_ts" INTEGER NOT NULL);
CREATE TABLE "outcomes" ("ticker" VARCHAR(255) NOT NULL PRIMARY KEY, "result" VARCHAR(255) NOT NULL, "ts" INTEGER NOT NULL);
CREATE TABLE "rejected_rows" ("id" INTEGER NOT NULL PRIMARY KEY, "ts" INTEGER NOT NULL, "source" VARCHAR(255) NOT NULL,
 "reason" TEXT NOT NULL, "payload" TEXT NOT NULL);
CREATE INDEX "rejected_rows_ts" ON "rejected_rows" ("ts");
CREATE TABLE "snapshots" ("id" INTEGER NOT NULL PRIMARY KEY, "ticker" VARCHAR(255) NOT NULL, "ts" INTEGER NOT NULL,
 "fetched_ts" INTEGER NOT NULL, "yes_bid" REAL, "yes_ask" REAL, "last" REAL, "volume" INTEGER NOT NULL,
 "book" TEXT NOT NULL, "source" VARCHAR(255) NOT NULL);
CREATE INDEX "snapshots_ts" ON "snapshots" ("ts");
CREATE TABLE "ticks" ("id" INTEGER NOT NULL PRIMARY KEY, "tick" INTEGER NOT NULL, "ts" INTEGER NOT NULL,
 "wall_ms" INTEGER NOT NULL, "saved" INTEGER NOT NULL, "rejected" INTEGER NOT NULL, "decisions" INTEGER NOT NULL,
 "fills" INTEGER NOT NULL, "settled" INTEGER NOT NULL, "errors" INTEGER NOT NULL, "latency_ms" REAL NOT NULL,
 "cash_cents" INTEGER NOT NULL, "equity_cents" INTEGER NOT NULL);
CREATE UNIQUE INDEX "ticks_tick" ON "ticks" ("tick");
INSERT INTO control VALUES ('schema_version', '3'), ('day_start_equity', '99583'), ('kill_switch', '0');
INSERT INTO markets VALUES ('A', 'a', 'S', 'E', 'settled', 1, 2, 'yes', 3), ('B', 'b', 'S', 'E', 'open', 1, 9, NULL, 3),
 ('C', 'c', 'S', 'E', 'unopened', NULL, NULL, NULL, 3), ('D', 'd', 'S', 'E', 'closed', 1, 2, NULL, 3);
INSERT INTO snapshots VALUES (1, 'A', 10, 11, 0.4, 0.45, 0.43, 120, '{"yes":[["0.4",10]],"no":[["0.55",7]]}', 'sim'),
 (2, 'B', 10, 11, 0.07, NULL, NULL, 0, '', 'sim'), (3, 'B', 20, 21, 0.29, 0.57, 0.99, 5, '', 'kalshi');
INSERT INTO estimates VALUES (1, 'B', 10, 0.61, 'beliefs-file');
INSERT INTO decisions VALUES (1, 10, 1, 'A', 'yes', 10, 0.45, 0.45, 0.6, 0.13, 467, 100000, 1, 'accepted'),
 (2, 20, 2, 'B', 'no', 3, 0.43, 0.43, 0.4, 0.15, 133, 99583, 0, 'spread too wide (0.28 > 0.05)');
INSERT INTO fills VALUES (1, 1, 10, 'A', 'yes', 'buy', 10, 10, 450, 17, '[["0.45", 10]]');
INSERT INTO ledger VALUES (1, 0, 'deposit', '', NULL, 0, 100000, 'deposit:initial'),
 (2, 10, 'buy', 'A', 'yes', 10, -450, 'fill:1:cost'), (3, 10, 'buy_fee', 'A', 'yes', 0, -17, 'fill:1:fee'),
 (4, 30, 'settle', 'A', 'yes', -10, 1000, 'settle:A:yes');
INSERT INTO outcomes VALUES ('A', 'yes', 30);
INSERT INTO events VALUES (1, 0, 'deposit', '100000');
INSERT INTO ticks VALUES (1, 1, 10, 11, 2, 0, 1, 1, 0, 0, 1.5, 99533, 99583), (2, 2, 30, 31, 1, 3, 1, 0, 1, 0, 1.5, 100533, 100533);
INSERT INTO rejected_rows VALUES (1, 10, 'kalshi', 'snapshot crossed', '{"ticker": "KXBAD", "yes_bid": 60}'),
 (2, 20, 'kalshi', 'snapshot crossed', '{"ticker": "KXBAD", "yes_bid": 61}'),
 (3, 30, 'kalshi', 'snapshot crossed', '{"ticker": "KXBAD", "yes_bid": 62}'),
 (4, 30, 'kalshi', 'snapshot crossed', '{"ticker": "KXOTHER"}'),
 (5, 40, 'replay', 'line 3: not JSON', 'not json at all');
"""


def make_v3(path):
    con = sqlite3.connect(path)
    con.executescript(V3)
    con.close()


def test_a_schema_3_file_is_migrated_on_open_without_losing_a_row(tmp_path):
    db = tmp_path / "old.db"
    make_v3(db)
    s = Store(db)
    try:
        c = s.db.connection()
        assert s.get_control("schema_version") == str(SCHEMA_VERSION) == "12"
        # money: cents -> centicents; counts: whole -> hundredths; the account is the same, in new units
        acct = s.account()
        assert acct.cash_cc == 100_533 * 100 and acct.deposits_cc == 10_000_000
        assert acct.realized_cc == (1000 - 450 - 17) * 100 and acct.open_positions() == []
        assert [(e.kind.value, e.contracts) for e in s.ledger_entries()][1:] == [
            ("buy", D(10)),
            ("buy_fee", D(0)),
            ("settle", D(-10)),
            ("note", D(0)),  # v5: where the hash chain begins (data_schema.md)
        ]
        assert [e.key for e in s.ledger_entries()][-1] == "note:chain-begins-v5"
        verify_ledger(c, db)  # every link holds, and it reconciles with its fill and outcome
        assert head_path(db).exists()
        assert s.get_control("day_start_equity") == "9958300"
        assert c.execute("SELECT cash_cc, equity_cc FROM ticks ORDER BY tick").fetchall() == [
            (9_953_300, 9_958_300),
            (10_053_300, 10_053_300),
        ]
        # REAL prices -> exact centicents (NULL stays NULL), volume -> hundredths, book text kept
        assert c.execute(
            "SELECT yes_bid_cc, yes_ask_cc, last_cc, volume_hundredths FROM snapshots ORDER BY id"
        ).fetchall() == [(4000, 4500, 4300, 12_000), (700, None, None, 0), (2900, 5700, 9900, 500)]
        a = s.latest_snapshot("A")
        assert (a.yes_bid, a.yes_ask, a.yes_bids[0].qty, a.ask(Side.YES)) == (D("0.4"), D("0.45"), D(10), D("0.45"))
        assert c.execute(
            "SELECT contracts_hundredths, limit_price_cc, best_ask_cc, worst_case_cc, equity_cc FROM"
            " decisions ORDER BY id"
        ).fetchall() == [(1000, 4500, 4500, 46_700, 10_000_000), (300, 4300, 4300, 13_300, 9_958_300)]
        assert c.execute(
            "SELECT requested_hundredths, contracts_hundredths, value_cc, fee_cc, levels FROM fills"
        ).fetchall() == [(1000, 1000, 45_000, 1_700, '[["0.45", 10]]')]
        # Kalshi's lifecycle words; the outcome keeps its result
        assert dict(c.execute("SELECT ticker, status FROM markets").fetchall()) == {
            "A": "finalized",
            "B": "active",
            "C": "initialized",
            "D": "closed",
        }
        assert s.settled_tickers() == {"A"} and s.outcome("A").status is MarketStatus.FINALIZED
        # one record per (source, ticker, reason), counted, first and last seen, the last payload
        assert c.execute(
            "SELECT source, ticker, reason, count, first_seen, last_seen, payload FROM rejected_rows"
            " ORDER BY source, ticker"
        ).fetchall() == [
            ("kalshi", "KXBAD", "snapshot crossed", 3, 10, 30, '{"ticker": "KXBAD", "yes_bid": 62}'),
            ("kalshi", "KXOTHER", "snapshot crossed", 1, 30, 30, '{"ticker": "KXOTHER"}'),
            ("replay", "", "line 3: not JSON", 1, 40, 40, "not json at all"),
        ]
        counts = {
            t: c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("markets", "snapshots", "estimates", "decisions", "fills", "ledger", "outcomes", "ticks")
        }
        assert counts == {
            "markets": 4,
            "snapshots": 3,
            "estimates": 1,
            "decisions": 2,
            "fills": 1,
            "ledger": 5,
            "outcomes": 1,
            "ticks": 2,
        }
        assert not [n for (n,) in c.execute("SELECT name FROM sqlite_master WHERE name LIKE '_old_%'")]
    finally:
        s.close()
    again = Store(db)  # a second open converts nothing twice
    try:
        assert again.account().cash_cc == 10_053_300 and again.get_control("day_start_equity") == "9958300"
        assert again.db.connection().execute("SELECT SUM(count) FROM rejected_rows").fetchone()[0] == 5
    finally:
        again.close()


def test_a_repeating_bad_row_does_not_grow_the_file(store):
    for ts in (1, 2, 3):
        store.insert_rejected(ts, "kalshi", "snapshot crossed", {"ticker": "KXBAD", "n": ts}, "KXBAD")
    store.insert_rejected(4, "kalshi", "snapshot crossed", {"ticker": "KXOTHER"}, "KXOTHER")
    store.insert_rejected(5, "kalshi", "market bad", ["junk"], {"not": "a ticker"})
    rows = (
        store.db.connection()
        .execute("SELECT ticker, reason, count, first_seen, last_seen, payload FROM rejected_rows ORDER BY id")
        .fetchall()
    )
    assert rows == [
        ("KXBAD", "snapshot crossed", 3, 1, 3, '{"n": 3, "ticker": "KXBAD"}'),
        ("KXOTHER", "snapshot crossed", 1, 4, 4, '{"ticker": "KXOTHER"}'),
        ("", "market bad", 1, 5, 5, '["junk"]'),
    ]


def test_readers_name_an_unmigrated_file_instead_of_failing_on_a_column(tmp_path):
    import pytest

    from kakashi_tui.adapters.queries import connect_readonly
    from kakashi_tui.core.errors import StoreError

    db = tmp_path / "old.db"
    make_v3(db)
    with pytest.raises(StoreError, match="schema version 3, older .* `kakashi run --db"):
        connect_readonly(db)
    Store(db).close()  # the writer migrates it
    connect_readonly(db).close()


def test_decisions_keep_no_index_and_a_file_that_has_them_loses_them_on_open(tmp_path):
    """Nothing reads decisions by ts or ticker; their indexes only slowed every commit."""
    db = tmp_path / "k.db"

    def decision_indexes(path) -> set[str]:
        con = sqlite3.connect(path)
        try:
            return {
                r[0]
                for r in con.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'decisions' AND sql IS NOT NULL"
                )
            }
        finally:
            con.close()

    Store(db).close()
    assert decision_indexes(db) == set()
    con = sqlite3.connect(db)
    con.execute("CREATE INDEX decisions_ts ON decisions (ts)")
    con.execute("CREATE INDEX decisions_ticker ON decisions (ticker)")
    con.commit()
    con.close()
    assert decision_indexes(db) == {"decisions_ts", "decisions_ticker"}  # as a file written before
    Store(db).close()
    assert decision_indexes(db) == set()


def _affinity(declared: str) -> str:
    """SQLite's type affinity of a declared type (https://sqlite.org/datatype3.html, 3.1)."""
    t = declared.upper()
    if "INT" in t:
        return "INTEGER"
    if any(s in t for s in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if not t or "BLOB" in t:
        return "BLOB"
    if any(s in t for s in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def _shape(path) -> dict[str, object]:
    """A file's tables (columns by name: type affinity, not-null, primary key) and indexes
    (columns, unique), ignoring column order and the defaults ALTER TABLE needs."""
    con = sqlite3.connect(path)
    try:
        shape: dict[str, object] = {}
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"):
            cols = {r[1]: (_affinity(r[2]), bool(r[3]), r[5]) for r in con.execute(f"PRAGMA table_info({table})")}
            idx = {
                tuple(c[2] for c in con.execute(f"PRAGMA index_info('{name}')")): bool(unique)
                for _seq, name, unique, origin, _partial in con.execute(f"PRAGMA index_list({table})")
                if origin != "pk"
            }
            shape[table] = (cols, idx)
        return shape
    finally:
        con.close()


def test_the_steps_from_the_oldest_file_give_the_shape_of_a_fresh_one(tmp_path):
    """Migrations declared once and checked: whatever a step does, the file it leaves has the
    tables, columns and indexes a new file gets from the models."""
    fresh, old = tmp_path / "fresh.db", tmp_path / "old.db"
    Store(fresh).close()
    make_v3(old)
    Store(old).close()
    assert _shape(old) == _shape(fresh)


def test_steps_go_one_version_at_a_time_and_only_the_newer_ones_run(tmp_path):
    import peewee as pw
    import pytest

    from kakashi_tui.adapters.store import migrations as m

    ran: list[int] = []
    steps = [m.Step(v, f"v{v}", lambda db, v=v: ran.append(v)) for v in (4, 5, 6)]
    assert m.check_steps(steps) == 6
    with pytest.raises(ValueError, match="one version at a time: 4 then 6"):
        m.check_steps([steps[0], steps[2]])
    db_path = tmp_path / "k.db"
    Store(db_path).close()  # a file at today's version
    db = pw.SqliteDatabase(str(db_path))
    db.execute_sql("UPDATE control SET value = '4' WHERE key = 'schema_version'")
    assert [s.version for s in m.upgrade(db, steps)] == [5, 6] and ran == [5, 6]
    assert m.file_version(db) == 6 and m.upgrade(db, steps) == [] and ran == [5, 6]
    db.close()
