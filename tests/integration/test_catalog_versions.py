"""The catalog is a stored format: files recorded before a version change (version 1: the
``*_e4`` / ``*_e2`` column names) read, dedupe and replay exactly as the files written now."""

import json
import shutil
import sqlite3
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from kakashi_tui.adapters import catalog as cat
from kakashi_tui.adapters.catalog import CatalogWriter
from kakashi_tui.core.models import Market
from tests.clirun import in_process
from tests.conftest import SIM_START_MS
from tests.integration.test_columnar import kalshi_records, record_sim, run
from tests.integration.test_replay import tables

#: The version-1 names, as Kakashi wrote them before issue #21 (this test's own copy, so that
#: a v1 file is built from the old names, not from the catalog's rename table).
V1_NAMES = {
    "yes_bid_cc": "yes_bid_e4",
    "yes_ask_cc": "yes_ask_e4",
    "last_cc": "last_e4",
    "volume_hundredths": "volume_e2",
    "settlement_value_micros": "settlement_value_e4",
    "yes_price_cc": "yes_price_e4",
    "count_hundredths": "count_e2",
    "price_cc": "price_e4",
    "delta_hundredths": "delta_e2",
}
V3_NEW = {"settlement_bounds_type", "settlement_floor_micros", "price_ranges", "exchange_index"}
V1_LEVEL = pa.struct([pa.field("price_e4", pa.int64(), nullable=False), pa.field("qty_e2", pa.int64(), nullable=False)])
V1_UNITS = {
    "snapshots": "ts, recv_ts UTC epoch ms; *_e4 $0.0001; *_e2 1/100 contract",
    "markets": "ts UTC epoch ms; *_e4 $0.0001",
    "trades": "ts UTC epoch ms; *_e4 $0.0001; *_e2 1/100 contract",
    "book_deltas": "ts UTC epoch ms; *_e4 $0.0001; *_e2 1/100 contract",
}


def to_v1(path):
    """Rewrite a segment as version 1 wrote it: the old column and level names, no version."""
    t = pq.read_table(path)
    table = t.schema.metadata[b"kakashi.table"].decode()
    fields, arrays = [], []
    for f in t.schema:
        if f.name in V3_NEW:
            continue  # (version 3's new market columns: an older file has none)
        values = t.column(f.name).to_pylist()
        if f.name == "settlement_value_micros":  # version 1 and 2 kept $0.0001
            values = [None if v is None else v // 100 for v in values]
        if f.name in ("yes_bids", "no_bids"):
            typ = pa.list_(V1_LEVEL)
            values = [
                None if ls is None else [{"price_e4": lv["price_cc"], "qty_e2": lv["qty_hundredths"]} for lv in ls]
                for ls in values
            ]
        else:
            typ = f.type
        fields.append(pa.field(V1_NAMES.get(f.name, f.name), typ, f.nullable))
        arrays.append(pa.array(values, typ))
    meta = {k: v for k, v in t.schema.metadata.items() if k != b"kakashi.catalog_version"}
    if table in V1_UNITS:
        meta[b"kakashi.units"] = V1_UNITS[table].encode()
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=meta)), path, compression="zstd")


def segments(root, table=None):
    return sorted((root / table if table else root).rglob("*.parquet"))


def test_files_say_their_version_and_the_old_names_are_gone(tmp_path):
    w = CatalogWriter(tmp_path / "c")
    w.add_trade(SIM_START_MS, "KXA-1", 4200, 300, "yes", "t1", "s")
    w.close()
    (f,) = segments(tmp_path / "c", "trades")
    schema = pq.read_schema(f)
    v = cat.CATALOG_VERSION
    assert schema.metadata[b"kakashi.catalog_version"] == str(v).encode() and cat.file_version(schema) == v
    assert "yes_price_cc" in schema.names and "count_hundredths" in schema.names
    to_v1(f)
    assert cat.file_version(pq.read_schema(f)) == 1 and "yes_price_e4" in pq.read_schema(f).names


def test_every_table_of_a_version_1_day_reads_as_version_2(tmp_path):
    """A v1 file of each table (the level structs too) reads as the same rows under today's names."""
    w = CatalogWriter(tmp_path / "c")
    T = SIM_START_MS
    w.add_snapshot_row(T, "A", 4200, 4500, 4300, 1250, [(4200, 100), (4100, 250)], [(5500, 300)], "s", T)
    w.add_snapshot_row(T + 1, "A", None, None, None, 0, [], [], "s", T + 1)
    settled = Market(ticker="A", status="settled", result="scalar", settlement_value=Decimal("0.4230"))
    assert w.add_market(settled, T) is None
    w.add_trade(T, "A", 4200, 300, "yes", "t1", "s")
    w.add_book_event(T, "A", "yes", 4200, 500, 1, 1, "snapshot", "s")
    w.add_book_event(T + 1, "A", "yes", 4200, -200, 2, 1, "delta", "s")
    w.close()
    before = {t: cat.read_table(tmp_path / "c", t) for t in cat.TABLES}
    assert before["markets"].column("settlement_value_micros").to_pylist() == [423000]
    for f in segments(tmp_path / "c"):
        to_v1(f)
    for t in cat.TABLES:
        after = cat.read_table(tmp_path / "c", t)
        assert after.schema.names == cat.SCHEMAS[t].names
        assert after.to_pylist() == before[t].to_pylist(), t
    books = cat.rebuild_books(cat.read_table(tmp_path / "c", "book_deltas").to_pylist())
    assert books == {"A": {"yes": {4200: 300}, "no": {}}}
    # (only the columns asked for, under today's names)
    assert cat.read_table(tmp_path / "c", "trades", ["count_hundredths"]).to_pylist() == [{"count_hundredths": 300}]


def test_a_version_1_catalog_replays_to_the_same_decisions_fills_and_cash(tmp_path):
    root, live_cash = record_sim(tmp_path, ticks=300)
    v1, mixed = tmp_path / "v1", tmp_path / "mixed"
    shutil.copytree(root, v1)
    shutil.copytree(root, mixed)
    for f in segments(v1):
        to_v1(f)
    for f in segments(mixed)[::2]:  # a day of files from before and after an upgrade
        to_v1(f)
    assert len({cat.file_version(pq.read_schema(f)) for f in segments(mixed, "snapshots")}) == 2
    cash, eq, st = run(tmp_path / "v2.db", root)
    want = tables(tmp_path / "v2.db")
    assert want["fills"] and any(r[1] == "settle" for r in want["ledger"]) and cash == live_cash
    for name, folder, columnar in (("v1", v1, True), ("v1rows", v1, False), ("mixed", mixed, True)):
        got_cash, got_eq, got_st = run(tmp_path / f"{name}.db", folder, columnar=columnar)
        assert tables(tmp_path / f"{name}.db") == want, name  # decisions, fills, ledger
        assert (got_cash, got_eq) == (cash, eq) and got_st.ticks == st.ticks, name
        assert got_st.snapshots == (st.snapshots if columnar else 0), name  # (the row path counts none)


def test_a_day_of_version_1_and_2_files_imports_idempotently_and_info_counts_its_rows(capfd, tmp_path):
    recs = kalshi_records(SIM_START_MS)
    third = len(recs) // 3
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps(r) + "\n" for r in recs[: 2 * third]))
    b.write_text("".join(json.dumps(r) + "\n" for r in recs[third:]))  # the middle third in both
    c = str(tmp_path / "c")
    p = in_process(capfd, "catalog", "import", "--input", str(a), "--catalog", c)
    assert p.returncode == 0, p.stderr
    for f in segments(tmp_path / "c"):
        to_v1(f)  # recorded before the upgrade
    p = in_process(capfd, "catalog", "import", "--input", str(b), "--catalog", c)
    assert p.returncode == 0, p.stderr
    assert "already in the catalog" in p.stdout  # the middle third, found in the v1 files
    versions = {cat.file_version(pq.read_schema(f)) for f in segments(tmp_path / "c", "snapshots")}
    assert versions == {1, cat.CATALOG_VERSION}
    rows = {t: cat.read_table(c, t).num_rows for t in cat.TABLES}
    snapshots = sum(1 for r in recs if r["type"] == "snapshot")
    assert rows["snapshots"] == snapshots
    for again in (a, b):
        p = in_process(capfd, "catalog", "import", "--input", str(again), "--catalog", c)
        assert p.returncode == 0, p.stderr
        assert "0 snapshots, 0 market changes, 0 estimates" in p.stdout, p.stdout
    assert {t: cat.read_table(c, t).num_rows for t in cat.TABLES} == rows
    p = in_process(capfd, "catalog", "info", "--catalog", c)
    assert p.returncode == 0, p.stderr
    (day,) = cat.info(c)
    assert day.rows == rows and day.markets == 3
    assert f"{snapshots:,}" in p.stdout and "unreadable" not in p.stdout + p.stderr
    # and its replay plays every row of both versions
    _cash, _eq, st = run(tmp_path / "r.db", tmp_path / "c")
    assert st.snapshots == snapshots
    assert sqlite3.connect(tmp_path / "r.db").execute("SELECT COUNT(*) FROM rejected_rows").fetchone()[0] == 0


def test_a_file_of_a_newer_version_is_unreadable_in_one_line(capfd, tmp_path):
    w = CatalogWriter(tmp_path / "c")
    w.add_snapshot_row(SIM_START_MS, "A", 4200, 4500, None, 0, [], [], "s")
    w.close()
    (f,) = segments(tmp_path / "c", "snapshots")
    t = pq.read_table(f)
    newer = str(cat.CATALOG_VERSION + 1)  # (the next version, whichever it is)
    pq.write_table(t.replace_schema_metadata({**t.schema.metadata, b"kakashi.catalog_version": newer.encode()}), f)
    p = in_process(capfd, "catalog", "info", "--catalog", str(tmp_path / "c"))
    said = f"catalog version '{newer}' is not one this Kakashi reads (1 to {cat.CATALOG_VERSION})"
    assert said in p.stdout + p.stderr
    p = in_process(capfd, "replay", "--catalog", str(tmp_path / "c"), "--db", str(tmp_path / "r.db"))
    assert p.returncode != 0 and f"is unreadable: its catalog version '{newer}'" in p.stderr
    assert "Traceback" not in p.stderr


def test_adding_a_version_is_one_entry():
    """A made-up next version renaming a level's field and scaling a column: a v2 table is read
    under its own names (``as_written``) and brought up to it (``upgrade``) by that entry alone."""
    n = cat.CATALOG_VERSION + 1
    ups = {
        **cat.UPGRADES,
        n: cat.Upgrade(
            renames={"snapshots": {"volume_hundredths": "volume_x", "yes_bids.qty_hundredths": "yes_bids.qty_x"}},
            retyped={"snapshots": {"volume_x": pa.int32()}},
            convert=lambda name, t: t.set_column(
                t.schema.get_field_index("volume_x"), "volume_x", pc.multiply(t["volume_x"], 10)
            ),
        ),
    }
    v3 = pa.schema(
        [pa.field("volume_x", pa.int64()), pa.field("yes_bids", pa.list_(pa.struct([("qty_x", pa.int64())])))]
    )
    assert cat.as_written(v3, "snapshots", 2, ups).names == ["volume_hundredths", "yes_bids"]
    assert cat.as_written(v3, "snapshots", 1, ups).field("volume_e2").type == pa.int32()
    assert cat.as_written(v3, "snapshots", 1, ups).field("yes_bids").type.value_type.field(0).name == "qty_e2"
    assert cat.file_columns("snapshots", ["ts", "volume_x"], 1, ups) == ["ts", "volume_e2"]
    v1 = pa.table(
        {"volume_e2": pa.array([5], pa.int32()), "yes_bids": pa.array([[{"qty_e2": 7}]])},
    )
    got = cat.upgrade("snapshots", v1, 1, ups)
    assert got.to_pylist() == [{"volume_x": 50, "yes_bids": [{"qty_x": 7}]}]
    with pytest.raises(pa.ArrowInvalid, match="not one this Kakashi reads"):
        cat.file_version(pa.schema([], metadata={"kakashi.catalog_version": str(n)}))
    assert cat.file_version(pa.schema([], metadata={"kakashi.catalog_version": str(n)}), newest=n) == n
