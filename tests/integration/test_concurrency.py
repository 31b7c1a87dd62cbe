"""One writer, many readers: the desk and reports read while the engine writes (WAL)."""

import threading

from kakashi_tui.adapters import queries
from kakashi_tui.frontends.report.postmortem import gather
from tests.conftest import make_engine


def test_readers_never_see_database_is_locked(tmp_path):
    db = tmp_path / "k.db"
    engine = make_engine(db)
    errors: list[BaseException] = []
    done = threading.Event()

    def write():
        try:
            for _ in range(300):
                engine.tick()
        except BaseException as e:  # noqa: BLE001 - the test reports whatever broke
            errors.append(e)
        finally:
            done.set()

    def desk_reads():  # what the desk's thread reads: its own read-only connection (views come
        try:  # from the engine's thread, built between ticks, never from this one)
            con = queries.connect_readonly(db)
            try:
                while not done.is_set():
                    queries.read_status(con, db)
                    queries.daily_stop_day(con)
                    queries.recent_decision_rows(con, 50)
                    for row in queries.market_rows(con)[:1]:
                        queries.snapshot_history(con, row[0], 100)
            finally:
                con.close()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    writer = threading.Thread(target=write)
    reader = threading.Thread(target=desk_reads)
    writer.start()
    reader.start()
    reports = 0
    while not done.is_set():
        d = gather(db)  # a separate read-only connection, as `kakashi report` or the `e` key uses
        assert d.breaches == []
        reports += 1
    writer.join()
    reader.join()
    engine.store.close()
    assert errors == [] and reports > 0
