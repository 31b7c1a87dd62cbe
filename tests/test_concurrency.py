"""One writer, many readers: the desk and reports read while the engine writes (WAL)."""

import threading

from kakashi_tui.report import gather
from kakashi_tui.view import build_view
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

    def desk_reads():  # what the UI thread does: views and control reads on its own connection
        try:
            while not done.is_set():
                build_view(engine)
                engine.daily_stopped()
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
