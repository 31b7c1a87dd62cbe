"""A long run's memory: ``kakashi run --headless`` at 1,000 simulated markets, its RSS sampled.

    .venv/bin/python -m benchmarks.soak --minutes 10            # what the README reports
    .venv/bin/python -m benchmarks.soak --hours 6 --every 500   # the several-hour version

It starts the real command (the desk's engine, log file, journal and catalog recorder: what an
operator leaves running) in a new folder, reads ``VmRSS`` of that process from
``/proc/<pid>/status`` every ``--every`` ticks (from its tick lines), and at the end prints the
trend: the RSS after the warm-up, the last, and the least-squares slope in MB per 1,000 ticks
and per hour. ``--interval S`` ticks at a cadence (default 0: flat out, the most ticks per hour).

``--tracemalloc`` runs the same wiring in this process instead, with ``tracemalloc`` on, and
prints the 15 allocation sites that grew most between the end of the warm-up and the end. It is
ten to thirty times slower: use it with fewer markets (``--markets 200 --warm 100``) to find what
grows, not to measure RSS. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1]) / 1024
    return 0.0


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y on x (0 with fewer than two points)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def write_config(folder: Path, markets: int) -> Path:
    cfg = folder / "soak.toml"
    cfg.write_text(f'[sim]\nmarkets = {markets}\n[desk]\npostmortem = "off"\n')
    return cfg


def summary(samples: list[tuple[int, float, float]], warm: int) -> None:
    """samples: (tick, seconds since start, RSS MB)."""
    after = [s for s in samples if s[0] >= warm] or samples
    if not after:
        print("no samples", flush=True)
        return
    per_tick = slope([(t, mb) for t, _s, mb in after]) * 1000
    per_hour = slope([(s, mb) for _t, s, mb in after]) * 3600
    first, last = after[0], after[-1]
    peak = max(mb for _t, _s, mb in after)
    print(
        f"soak: {last[0]} ticks in {last[1] / 60:.1f} min | RSS {first[2]:.1f} MB at tick {first[0]} -> "
        f"{last[2]:.1f} MB (peak {peak:.1f}) | slope {per_tick:+.3f} MB per 1,000 ticks, {per_hour:+.1f} MB/h",
        flush=True,
    )


def soak_process(seconds: float, markets: int, every: int, warm: int, interval: float, keep: bool) -> None:
    folder = Path(tempfile.mkdtemp(prefix="kakashi-soak-"))
    cfg = write_config(folder, markets)
    cmd = [sys.executable, "-m", "kakashi_tui", "run", "--headless", "--config", str(cfg), "--db", str(folder / "k.db")]
    cmd += ["--interval", str(interval)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=folder, env=env)
    assert proc.stdout is not None
    print(f"# soak: {markets} markets, {seconds / 60:.0f} min, pid {proc.pid}, folder {folder}", flush=True)
    t0 = time.monotonic()
    samples: list[tuple[int, float, float]] = []
    try:
        for ln in proc.stdout:
            if not ln.startswith("tick "):
                continue
            tick = int(ln.split()[1])
            if tick % every == 0:
                el = time.monotonic() - t0
                mb = rss_mb(proc.pid)
                samples.append((tick, el, mb))
                print(f"tick {tick:>8} {el / 60:7.1f} min  RSS {mb:8.1f} MB", flush=True)
            if time.monotonic() - t0 >= seconds:
                break
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    summary(samples, warm)
    db = folder / "k.db"
    sizes = {p.name: p.stat().st_size for p in folder.glob("k.db*")}
    cat = sum(p.stat().st_size for p in (folder / "catalog").rglob("*.parquet"))
    last_tick = samples[-1][0] if samples else 0
    if last_tick:
        print(
            f"soak: disk {sum(sizes.values()) / 1e6:.0f} MB database ({db.name} and WAL), {cat / 1e6:.0f} MB catalog:"
            f" {sum(sizes.values()) / last_tick / 1e3:.0f} kB and {cat / last_tick / 1e3:.1f} kB per tick",
            flush=True,
        )
    if not keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def soak_traced(seconds: float, markets: int, every: int, warm: int, frames: int, keep: bool) -> None:
    """In this process, with tracemalloc: which allocation sites grew after the warm-up."""
    import tracemalloc

    sys.path.insert(0, str(ROOT))
    from kakashi_tui.frontends.journal import Journal
    from kakashi_tui.frontends.logfile import OperatorLog
    from kakashi_tui.trading.config import load_config
    from kakashi_tui.trading.runtime import Options, build_service

    folder = Path(tempfile.mkdtemp(prefix="kakashi-soak-"))
    cfg = load_config(str(write_config(folder, markets)))
    opts = Options(db=str(folder / "k.db"), record=True, catalog=str(folder / "catalog"))
    log = OperatorLog(folder / "kakashi.log", db=opts.db)
    service, close = build_service(opts, cfg, interval=0.0, log=lambda line: log.write("EVENT", line))
    service.on_report(Journal(log, None, service.edge_threshold).on_report)
    tracemalloc.start(frames)
    t0 = time.monotonic()
    base = None
    n = 0

    def more() -> bool:
        return time.monotonic() - t0 < seconds

    def on_report(report) -> None:
        nonlocal base, n
        n += 1
        if n == warm:
            base = tracemalloc.take_snapshot()
        if n % every == 0:
            print(f"tick {n:>8} {(time.monotonic() - t0) / 60:7.1f} min  RSS {rss_mb():8.1f} MB", flush=True)

    service.on_report(on_report)
    try:
        service.run_here(more)
    finally:
        close()
        log.close()
        if not keep:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    if base is None:
        print(f"the warm-up ({warm} ticks) did not end in {seconds:.0f}s", flush=True)
        return
    top = tracemalloc.take_snapshot().compare_to(base, "traceback")
    print(f"# the 15 sites that grew most from tick {warm} to tick {n}:", flush=True)
    for stat in top[:15]:
        print(f"{stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8d} blocks", flush=True)
        for frame in stat.traceback.format()[-6:]:
            print(f"    {frame}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--hours", type=float, default=None)
    ap.add_argument("--markets", type=int, default=1000)
    ap.add_argument("--every", type=int, default=100, help="sample RSS every N ticks (default 100)")
    ap.add_argument("--warm", type=int, default=200, help="ticks before the trend is measured (default 200)")
    ap.add_argument("--interval", type=float, default=0.0, help="seconds between ticks (default 0: flat out)")
    ap.add_argument("--keep", action="store_true", help="keep the run's folder (database, catalog, log)")
    ap.add_argument("--tracemalloc", action="store_true", help="in this process: what grew (slower)")
    ap.add_argument("--frames", type=int, default=6, help="with --tracemalloc: frames kept per allocation")
    a = ap.parse_args()
    seconds = (a.hours or 0) * 3600 + (a.minutes or 0) * 60 or 600.0
    print(f"# machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, {sys.platform}", flush=True)
    if a.tracemalloc:
        soak_traced(seconds, a.markets, a.every, a.warm, a.frames, a.keep)
    else:
        soak_process(seconds, a.markets, a.every, a.warm, a.interval, a.keep)


if __name__ == "__main__":
    main()
