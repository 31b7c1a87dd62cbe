"""Issue #19, "A week, sized": what the database and the catalog cost on disk, as ``kakashi
status`` and ``kakashi catalog info`` say it. Real engines, real files, the commands in-process."""

from __future__ import annotations

import pytest

from kakashi_tui.adapters.catalog import CatalogWriter
from kakashi_tui.adapters.queries import connect_readonly
from tests.clirun import in_process
from tests.conftest import SIM_START_MS, book


# -- disk -----------------------------------------------------------------------------------------
def test_status_says_the_database_size_and_its_growth_a_day(capfd, tmp_path):
    db = tmp_path / "k.db"
    assert (
        in_process(capfd, "run", "--headless", "--ticks", "40", "--interval", "0.01", "--db", str(db)).returncode == 0
    )
    p = in_process(capfd, "status", "--db", str(db))
    assert p.returncode == 0, p.stderr
    disk = [ln for ln in p.stdout.splitlines() if ln.startswith("disk: database ")]
    assert len(disk) == 1, p.stdout
    assert " a tick over 40 ticks | about " in disk[0] and " a day at the latest ticks' pace (a tick every " in disk[0]
    from kakashi_tui.adapters.queries import disk_use

    con = connect_readonly(db)
    try:
        d = disk_use(con, db)
    finally:
        con.close()
    assert d.file_bytes == db.stat().st_size and d.ticks == 40
    assert d.tick_gap_ms is not None and d.tick_gap_ms >= 10  # --interval 0.01: at least 10 ms apart
    assert d.bytes_per_day == pytest.approx(d.used_bytes / 40 * 86_400_000 / d.tick_gap_ms)


def test_catalog_info_says_the_total_size_and_the_growth_a_day(capfd, tmp_path):
    cat = tmp_path / "cat"
    w = CatalogWriter(cat, roll_s=float("inf"))
    for i in range(121):  # two hours of one quote a minute on one day
        w.add_snapshot(book("A", ts=SIM_START_MS + i * 60_000), "sim")
    w.close()
    size = sum(f.stat().st_size for f in cat.rglob("*.parquet"))
    p = in_process(capfd, "catalog", "info", "--catalog", str(cat))
    assert p.returncode == 0, p.stderr
    from kakashi_tui.frontends.fmt import fmt_bytes

    assert p.stdout.splitlines()[0] == (
        f"catalog {cat} | size {fmt_bytes(size)} on disk | growth about {fmt_bytes(size * 12)} a day of data "
        f"({fmt_bytes(size)} over 2.0 h of snapshots)"
    )
