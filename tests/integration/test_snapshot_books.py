"""`kakashi snapshot` stores the books of the markets it snapshots (#22 item 8), asked for as
item 7 says: unsigned without a key, signed with one, one market at a time when the server has
no batch endpoint. Through the CLI, on the loopback server, into a real SQLite file."""

import json
import sqlite3
from decimal import Decimal

import pytest

from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer, make_test_key
from tests.clirun import ENV, in_process

KEY_ID = "snapshot-key"


def snapshot(capfd, srv, tmp_path, env=None, *more):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[kalshi]\ntimeout_s = 2.0\nmax_retries = 1\nbackoff_base_s = 0.01\nreads_per_s = 500\n")
    args = ("snapshot", "--source", "kalshi", "--api-base", srv.base_url, "--db", str(tmp_path / "k.db"))
    return in_process(capfd, *args, "--config", str(cfg), "--strict", *more, env=env)


def stored_books(tmp_path) -> dict[str, dict]:
    with sqlite3.connect(tmp_path / "k.db") as db:
        rows = db.execute("SELECT ticker, book FROM snapshots ORDER BY id").fetchall()
    return {t: json.loads(b) for t, b in rows if b}


@pytest.mark.parametrize("mode", ["no key", "key", "no batch endpoint"])
def test_snapshot_stores_the_book_of_every_market_it_snapshots(capfd, tmp_path, mode):
    st = FakeKalshi.with_markets(12, page_size=100)
    st.require_signature = mode == "key"  # the live exchange serves books unsigned; this one wants a key
    st.batch_books = mode != "no batch endpoint"
    env = None
    if mode == "key":
        path, st.public_key = make_test_key(tmp_path)
        st.key_id = KEY_ID
        env = {**ENV, "KAKASHI_KALSHI_KEY_ID": KEY_ID, "KAKASHI_KALSHI_KEY_FILE": path}
    with FakeKalshiServer(st) as srv:
        p = snapshot(capfd, srv, tmp_path, env)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert p.stdout.splitlines()[-1] == "snapshot: 12 saved, 0 rejected from kalshi", p.stdout
    books = stored_books(tmp_path)
    assert set(books) == {m.ticker for m in st.markets}  # every market snapshotted, with its book
    for m in st.markets:
        got_yes = [(Decimal(p), Decimal(q)) for p, q in books[m.ticker]["yes"]]
        assert got_yes == m.yes_levels(), m.ticker  # the server's own levels, best first
        assert len(books[m.ticker]["no"]) == len(m.no_levels())
    paths = [path for _, path in st.requests]
    if mode == "key":
        assert "/trade-api/v2/markets/orderbooks" in st.signed and KEY_ID not in p.stdout + p.stderr
    else:
        assert not st.signed  # nothing signed without a key
    if mode == "no batch endpoint":
        one_by_one = {path.split("/")[4] for path in paths if path.endswith("/orderbook")}
        assert one_by_one == {m.ticker for m in st.markets}  # all of them, not a tick's share
    else:
        assert sum(path.startswith("/trade-api/v2/markets/orderbooks?") for path in paths) == 1  # 12 in one


def test_without_a_key_a_server_that_wants_one_still_gets_a_snapshot_and_says_so_once(capfd, tmp_path):
    """Unsigned first; a 401 on the books means a key is needed: the quotes are stored without
    books, and the snapshot says why once."""
    st = FakeKalshi.with_markets(6, page_size=100)
    st.require_signature = True
    with FakeKalshiServer(st) as srv:
        p = snapshot(capfd, srv, tmp_path)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert p.stdout.splitlines()[-1] == "snapshot: 6 saved, 0 rejected from kalshi"
    assert not stored_books(tmp_path)
    # the start's notice (no key: unsigned), then the 401's note (this server wants one), each once
    assert p.stderr.count("KAKASHI_KALSHI_KEY_ID") == 1, p.stderr
    (said,) = [ln for ln in p.stdout.splitlines() if "a key is needed" in ln]
    assert said.startswith("note: Kalshi refused the request (HTTP 401"), p.stdout
