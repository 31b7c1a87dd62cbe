"""#20 item 5: a tamper-evident ledger. An edited, inserted or deleted entry is refused as
``corrupt database: ledger entry N ...`` (exit 1) by `status`, the report and start-up; an edit
whose chain and head were forged too is caught by the reconciliation with the fills, the
recorded results and the start's deposit. Before this, two INT64_MAX buys gave a cash of
$1.84 quadrillion that the report called reconciled."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from kakashi_tui.adapters.store.chain import CHAINED, GENESIS, head_path, link, read_head, write_head
from kakashi_tui.adapters.store.rows import verify_ledger
from kakashi_tui.adapters.store.writer import Store

from .test_hostile import one_line, run_cli


@pytest.fixture(scope="module")
def traded(tmp_path_factory) -> Path:
    from tests.conftest import make_engine

    path = tmp_path_factory.mktemp("chain") / "k.db"
    e = make_engine(path)
    for _ in range(200):
        e.tick()
    e.store.close()
    with sqlite3.connect(path) as c:
        kinds = {k for (k,) in c.execute("SELECT DISTINCT kind FROM ledger")}
    assert {"deposit", "buy", "buy_fee", "settle"} <= kinds, kinds
    return path


def copy(traded: Path, tmp_path: Path) -> Path:
    db = tmp_path / "t.db"
    shutil.copy(traded, db)
    shutil.copy(head_path(traded), head_path(db))
    return db


def edit(db: Path, *sql: str, forge: bool = False) -> None:
    """Apply each statement (each must change a row); ``forge`` then recomputes every link and
    the head, as someone who knows the scheme and can write both files would."""
    c = sqlite3.connect(db)
    try:
        for q in sql:
            assert c.execute(q).rowcount > 0, q
        if forge:
            prev = GENESIS
            for row in c.execute(f"SELECT {CHAINED} FROM ledger ORDER BY id").fetchall():
                prev = link(prev, *row)
                c.execute("UPDATE ledger SET chain = ? WHERE id = ?", (prev, row[0]))
        c.commit()
        if forge:
            write_head(db, c)
    finally:
        c.close()


def refused_everywhere(capsys, tmp_path: Path, db: Path, expected: str) -> None:
    before = db.read_bytes()
    for args in (("status",), ("report", "--out", str(tmp_path / "rep"), "--no-charts")):
        code, _out, err = run_cli(capsys, *args, "--db", str(db))
        line = one_line(err)
        assert code == 1 and line.startswith("kakashi: error: corrupt database: ledger entry ") and expected in line, (
            args,
            line,
        )
    assert db.read_bytes() == before


def test_a_clean_ledger_verifies_and_status_says_so(traded, tmp_path, capsys):
    db = copy(traded, tmp_path)
    code, out, _err = run_cli(capsys, "status", "--db", str(db))
    assert code == 0 and "hash chain intact, reconciled with fills, results and the first deposit" in out
    assert "no head file" not in out


def test_two_buys_set_to_int64_max_are_refused_not_reconciled(traded, tmp_path, capsys):
    db = copy(traded, tmp_path)
    edit(
        db,
        "UPDATE ledger SET amount_cc = 9223372036854775807 WHERE id IN (SELECT id FROM ledger WHERE kind = 'buy'"
        " ORDER BY id LIMIT 2)",
    )
    refused_everywhere(capsys, tmp_path, db, "its hash does not match its content")
    code, _out, err = run_cli(capsys, "run", "--headless", "--ticks", "1", "--db", str(db))
    assert code == 1 and "corrupt database: ledger entry " in one_line(err)  # nor does it trade on it


def test_one_centicent_with_a_forged_chain_disagrees_with_its_fill(traded, tmp_path, capsys):
    db = copy(traded, tmp_path)
    edit(db, "UPDATE ledger SET amount_cc = amount_cc + 1 WHERE key = 'fill:1:cost'", forge=True)
    refused_everywhere(capsys, tmp_path, db, "does not match fill 1")


def test_a_settlement_paid_more_than_its_result_is_refused(traded, tmp_path, capsys):
    db = copy(traded, tmp_path)
    edit(
        db,
        "UPDATE ledger SET amount_cc = amount_cc + 10000 WHERE id = (SELECT MIN(id) FROM ledger WHERE kind = 'settle')",
        forge=True,
    )
    refused_everywhere(capsys, tmp_path, db, "its recorded result pays")


def test_a_bigger_first_deposit_or_a_second_one_is_refused(traded, tmp_path, capsys):
    db = copy(traded, tmp_path)
    edit(db, "UPDATE ledger SET amount_cc = amount_cc * 2 WHERE key = 'deposit:initial'", forge=True)
    refused_everywhere(capsys, tmp_path, db, "the first deposit is")
    db2 = tmp_path / "two"
    db2.mkdir()
    db2 = copy(traded, db2)
    edit(
        db2,
        "INSERT INTO ledger (ts, kind, ticker, side, contracts_hundredths, amount_cc, key, chain)"
        " VALUES (1, 'deposit', '', NULL, 0, 1000000000, 'deposit:more', '')",
        forge=True,
    )
    refused_everywhere(capsys, tmp_path, db2, "a deposit the start did not make")


def test_a_deleted_tail_is_seen_through_the_head_beside_the_database(traded, tmp_path, capsys):
    db = copy(traded, tmp_path)
    n = read_head(db)
    assert n is not None
    edit(db, "DELETE FROM ledger WHERE id > (SELECT MAX(id) - 3 FROM ledger)")  # the chain before stays whole
    refused_everywhere(capsys, tmp_path, db, f"ledger entry {n[1]}: missing (deleted)")


def test_a_deleted_entry_in_the_middle_breaks_the_next_link(traded, tmp_path, capsys):
    db = copy(traded, tmp_path)
    edit(db, "DELETE FROM ledger WHERE id = 5")
    refused_everywhere(capsys, tmp_path, db, "ledger entry 6: its hash does not match")


def test_a_head_behind_the_file_is_a_crash_between_commit_and_head_not_tampering(tmp_path):
    """kill -9 after a commit and before the head's rewrite leaves the head behind: accepted."""
    from tests.conftest import make_engine

    db = tmp_path / "k.db"
    e = make_engine(db)
    for _ in range(40):
        e.tick()
    stale = head_path(db).read_bytes()
    for _ in range(60):
        e.tick()
    e.store.close()
    assert head_path(db).read_bytes() != stale  # the head moves with the commits
    head_path(db).write_bytes(stale)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert len(verify_ledger(con, db)) > 1
    finally:
        con.close()
    Store(db).close()  # and the writer opens it


def test_a_file_copied_without_its_head_opens_and_says_a_tail_cannot_be_checked(traded, tmp_path, capsys):
    db = tmp_path / "t.db"
    shutil.copy(traded, db)
    code, out, _err = run_cli(capsys, "status", "--db", str(db))
    assert code == 0 and "no head file beside the database: a deleted tail would not be seen" in out
    Store(db).close()  # the writer verifies the chain and writes a head from it
    assert read_head(db) is not None


def test_the_head_is_written_owner_only_and_never_left_half_written(traded, tmp_path):
    import stat

    db = copy(traded, tmp_path)
    Store(db).close()
    assert stat.S_IMODE(head_path(db).stat().st_mode) == 0o600
    assert not list(tmp_path.glob("*.tmp"))


def test_a_pipe_put_where_the_head_goes_is_refused_at_once_not_waited_on(traded, tmp_path, capsys):
    import os

    db = tmp_path / "t.db"
    shutil.copy(traded, db)
    os.mkfifo(head_path(db))
    code, _out, err = run_cli(capsys, "status", "--db", str(db))
    assert code == 1 and "the ledger head" in one_line(err) and "not a regular file" in err
