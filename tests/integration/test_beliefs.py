import os
from decimal import Decimal as D

import pytest

from kakashi_tui.adapters.beliefs import BeliefsFile, load_beliefs
from kakashi_tui.core.errors import ConfigError


def test_toml_and_csv(tmp_path):
    t = tmp_path / "b.toml"
    t.write_text('[beliefs]\nKXA = 0.62\n"KX-B" = 0.1\n')
    assert load_beliefs(t) == {"KXA": D("0.62"), "KX-B": D("0.1")}
    c = tmp_path / "b.csv"
    c.write_text("ticker,p_hat\nKXA,0.62\n# comment\n\nKXB, 0.3\n")
    assert load_beliefs(c) == {"KXA": D("0.62"), "KXB": D("0.3")}


@pytest.mark.parametrize("name, text", [("b.csv", "ticker,p_hat\nKXA,0.62\n"), ("b.toml", "[beliefs]\nKXA = 0.62\n")])
def test_a_utf8_bom_is_not_part_of_the_first_line(tmp_path, name, text):
    """Excel's "CSV UTF-8" starts the file with a BOM: it was read as part of the header's
    ticker (CSV) or made the first line unparseable (TOML), refusing the whole file."""
    f = tmp_path / name
    f.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_beliefs(f) == {"KXA": D("0.62")}


@pytest.mark.parametrize(
    "name, text, fragment",
    [
        ("b.toml", "[beliefs]\nKXA = 1.5\n", "b.toml:2: KXA: p_hat must be strictly between 0 and 1"),
        ("b.toml", "[beliefs\n", "b.toml:1: not 'ticker = p_hat'"),
        ("b.csv", "KXA\n", "b.csv:1: KXA: expected 'ticker,p_hat'"),
        ("b.csv", "KXA,abc\n", "b.csv:1: KXA: p_hat is not a number"),
    ],
)
def test_bad_beliefs_are_refused(tmp_path, name, text, fragment):
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        load_beliefs(f)


def test_reload_on_change_keeps_last_good_on_bad_edit(tmp_path):
    f = tmp_path / "b.toml"
    f.write_text("[beliefs]\nKXA = 0.6\n")
    b = BeliefsFile(f)
    assert [e.p_hat for e in b.estimates(["KXA", "OTHER"], 1000)] == [D("0.6")]
    f.write_text("[beliefs]\nKXA = 0.7\n")
    os.utime(f, ns=(1, 10**18))
    assert b.estimates(["KXA"], 2000)[0].p_hat == D("0.7")
    f.write_text("[beliefs]\nKXA = nope\n")
    os.utime(f, ns=(1, 2 * 10**18))
    assert b.estimates(["KXA"], 3000)[0].p_hat == D("0.7") and "KXA: p_hat is not a number" in b.last_error


def test_beliefs_changes_are_stored_with_timestamps(tmp_path):
    from kakashi_tui.adapters.source import FetchBatch
    from kakashi_tui.adapters.store.schema import EstimateRow
    from kakashi_tui.adapters.store.writer import Store
    from kakashi_tui.trading.engine import Engine, EngineConfig
    from tests.integration.test_engine import FakeSource, row

    f = tmp_path / "b.toml"
    f.write_text("[beliefs]\nT = 0.6\n")
    b = BeliefsFile(f)
    e = Engine(Store(tmp_path / "k.db"), FakeSource([FetchBatch(rows=[row()])] * 3), [b], EngineConfig())
    e.tick()
    e.tick()
    assert EstimateRow.select().count() == 1  # unchanged: stored once
    f.write_text("[beliefs]\nT = 0.65\n")
    os.utime(f, ns=(1, 10**18))
    e.tick()
    assert [r.p_hat for r in EstimateRow.select().order_by(EstimateRow.id)] == [0.6, 0.65]
    e.store.close()


def test_believed_tickers_without_a_market_are_said_once_until_they_change(tmp_path):
    from kakashi_tui.adapters.beliefs import unmatched_summary

    f = tmp_path / "b.toml"
    f.write_text('[beliefs]\nKXA = 0.6\n"KXTYPO-1" = 0.4\n')
    b = BeliefsFile(f)
    b.estimates(["KXA", "KXB"], 1000)
    b.estimates(["KXA", "KXB"], 2000)  # the same unknown ticker is not said again
    b.estimates([], 3000)  # a tick with no market data (feed down) says nothing
    assert b.take_said() == [unmatched_summary(frozenset({"KXTYPO-1"}))] and b.unmatched == {"KXTYPO-1"}
    assert b.take_said() == []  # said once
    b.estimates(["KXB"], 4000)  # KXA's market is gone too
    assert b.take_said() == [unmatched_summary(frozenset({"KXA"}))]
    assert unmatched_summary(frozenset({"KXTYPO-1"})).startswith("beliefs: no market for KXTYPO-1")
