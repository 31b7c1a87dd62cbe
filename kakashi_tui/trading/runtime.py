"""Assemble an engine and its trading service from settings (shared by the CLI, the desk,
the benchmarks and tests). Nothing here trades: it only wires adapters to the engine.

Settings are resolved by pydantic-settings (config.py's ``Settings``), each with its origin,
in one order: command line > environment > config file > what the database remembers > default.
A database that remembers a different seed, market count or bankroll than asked for says
so in one line (``notes``) instead of silently winning.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kakashi_tui.adapters.store.controls import Control
from kakashi_tui.core.errors import ConfigError, KakashiError
from kakashi_tui.core.money import fmt_cc
from kakashi_tui.core.text import safe_text
from kakashi_tui.trading.config import KakashiConfig, Setting, Settings, check_api_base, recorded_settings

if TYPE_CHECKING:
    # The feeds, the catalog, the simulator, the engine and the store are imported where a run is
    # built: `kakashi kill`, `pause`, `resume` and `status` read a setting or two from here and must
    # start fast (no httpx, pyarrow, numpy or websockets; tests/integration/test_startup.py).
    from kakashi_tui.adapters.beliefs import BeliefsFile
    from kakashi_tui.adapters.catalog import Recorder
    from kakashi_tui.adapters.kalshi.client import KalshiClient
    from kakashi_tui.adapters.kalshi.source import KalshiSource
    from kakashi_tui.adapters.kalshi.ws import LiveBookSource
    from kakashi_tui.adapters.sim import SimExchange
    from kakashi_tui.adapters.source import Estimator, Source
    from kakashi_tui.adapters.store.writer import Store
    from kakashi_tui.trading.engine import Engine
    from kakashi_tui.trading.service import TradingService


@dataclass
class Options:
    source: str = "sim"
    db: str | None = None
    seed: int | None = None
    api_base: str | None = None
    beliefs: str | None = None
    tickers: list[str] = field(default_factory=list)
    series: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    sim_start_ms: int | None = None  # tests pin the simulated clock
    record: bool = False  # write what the feed sees into the market-data catalog as it trades
    catalog: str | None = None  # the catalog folder (default: [catalog] dir, else catalog/ beside the DB)
    book_all: bool = False  # Kalshi: book every market listed, not only held and believed (kakashi snapshot)

    def command_line(self) -> dict[str, object]:
        """The settings the command line gives (``None``: not given; an empty ``--beliefs`` or
        ``--catalog`` is not given either, as before)."""
        return {
            "db": self.db,
            "seed": self.seed,
            "api_base": self.api_base,
            "beliefs": self.beliefs or None,
            "catalog": self.catalog or None,
        }


def settings(opts: Options, cfg: KakashiConfig, remembered: Mapping[str, object] | None = None) -> Settings:
    """The settings (config.py's ``Settings``: pydantic-settings over the command line ``opts``,
    the environment, ``cfg`` and what the database ``remembered``), each with its origin."""
    return Settings.resolve(opts.command_line(), cfg, remembered)


def _api_base(s: Settings) -> str:
    from kakashi_tui.adapters.kalshi.client import PRODUCTION_BASE

    got = s.setting("api_base")
    try:
        return check_api_base(got.value or PRODUCTION_BASE)  # (the flag and the config checked it already)
    except ValueError as e:
        raise ConfigError(f"{got.origin}: {e}") from None


def api_base(opts: Options, cfg: KakashiConfig) -> str:
    return _api_base(settings(opts, cfg))


def db_path(opts: Options, cfg: KakashiConfig) -> str:
    return settings(opts, cfg).db


@dataclass
class SimSettings:
    seed: Setting[int]
    markets: Setting[int]
    step_ms: Setting[int]
    start_ms: int
    notes: list[str]
    bracket_events: Setting[int]


#: What a database remembers of the simulator it ran, by setting.
REMEMBERED = {
    "seed": Control.SIM_SEED,
    "markets": Control.SIM_MARKETS,
    "step_ms": Control.SIM_STEP_MS,
    "bracket_events": Control.SIM_BRACKET_EVENTS,
}


def resolve_sim(store: Store, opts: Options, cfg: KakashiConfig) -> SimSettings:
    """The simulator's settings. A database resumes its own world (seed, clock, tick); a
    seed asked for that differs from the one it remembers is refused (a different world);
    a different market count or step is used, and said so. (The database is the one layer
    read after the database is opened: its path is a setting too.)"""
    from kakashi_tui.adapters.store.writer import now_wall_ms

    stored = {name: store.control(key) for name, key in REMEMBERED.items()}
    s = settings(opts, cfg, {name: v for name, v in stored.items() if isinstance(v, int)})
    seed = s.setting("seed")
    if stored["seed"] is not None and stored["seed"] != seed.value:
        raise ConfigError(
            f"{store.path} was created with --seed {stored['seed']} ({seed.origin} asks "
            f"{seed.value}); use that seed or another --db"
        )
    notes: list[str] = []
    for name in ("markets", "step_ms", "bracket_events"):
        got = s.setting(name)
        if isinstance(stored[name], int) and stored[name] != got.value:
            notes.append(
                f"{store.path} remembers [sim] {name} = {stored[name]}; using {got.value} from the {got.origin}"
            )
    start = store.control(Control.SIM_START_MS)
    start_ms = start if isinstance(start, int) else (opts.sim_start_ms or (now_wall_ms() // 60_000) * 60_000)
    return SimSettings(seed, s.setting("markets"), s.setting("step_ms"), start_ms, notes, s.setting("bracket_events"))


def build_sim(
    store: Store, opts: Options, cfg: KakashiConfig, notes: list[str] | None = None, recorder: Recorder | None = None
) -> SimExchange:
    """The simulator resumes where this database left it: same seed, same clock, same tick. A
    ``recorder`` gets its trade prints and its book changes (as the Kalshi feed's)."""
    from kakashi_tui.adapters.sim import SimExchange

    st = resolve_sim(store, opts, cfg)
    if notes is not None:
        notes.extend(st.notes)
    with store.atomic():
        store.set_controls(
            {
                Control.SIM_SEED: st.seed.value,
                Control.SIM_START_MS: st.start_ms,
                Control.SIM_MARKETS: st.markets.value,
                Control.SIM_STEP_MS: st.step_ms.value,
                Control.SIM_BRACKET_EVENTS: st.bracket_events.value,
            }
        )
    sim = SimExchange(
        seed=st.seed.value,
        markets=st.markets.value,
        start_ms=st.start_ms,
        step_ms=st.step_ms.value,
        only=frozenset(opts.tickers) if opts.tickers else None,
        quiet_rate=cfg.sim.quiet_rate,
        prints_per_step=cfg.sim.prints_per_step,
        block_trade_rate=cfg.sim.block_trade_rate,
        on_trades=recorder.trades if recorder is not None else None,
        on_book_events=recorder.book_events if recorder is not None and cfg.sim.record_books else None,
        bracket_events=st.bracket_events.value,
    )
    sim.fast_forward(int(store.control(Control.SIM_TICK) or 0))
    return sim


def bankroll_note(engine: Engine, cfg: KakashiConfig) -> str | None:
    """The ledger's first deposit is the bankroll; a different one asked for is said, not used."""
    asked = cfg.engine_config().bankroll_cc
    funded = next((e.amount_cc for e in engine.store.ledger_entries() if e.key == "deposit:initial"), None)
    if "bankroll" in cfg.model_fields_set and funded is not None and funded != asked:
        return (
            f"{engine.store.path} was funded with {fmt_cc(funded)}; bankroll {fmt_cc(asked)} "
            f"from the config file applies to a new --db only"
        )
    return None


def build_kalshi_client(opts: Options, cfg: KakashiConfig) -> tuple[KalshiClient, str | None]:
    """The client, signing when credentials are set (environment first, then [kalshi]), and a
    notice when they are half set."""
    from kakashi_tui.adapters.kalshi.auth import signer_from
    from kakashi_tui.adapters.kalshi.client import KalshiClient

    s = settings(opts, cfg)
    key_id = s.kalshi_key_id.get_secret_value() if s.kalshi_key_id is not None else None
    # env={}: the environment is one of the settings' layers, already read (in its place).
    signer, notice = signer_from(key_id, s.kalshi_key_file, env={})
    return KalshiClient(
        base_url=_api_base(s),
        timeout=cfg.kalshi.timeout_s,
        max_retries=cfg.kalshi.max_retries,
        backoff_base=cfg.kalshi.backoff_base_s,
        signer=signer,
        reads_per_s=cfg.kalshi.reads_per_s,  # with a key, the account's budget replaces it, never past one set here
        reads_cap=cfg.kalshi.reads_per_s if "reads_per_s" in cfg.kalshi.model_fields_set else None,
    ), notice


def live_books(
    source: KalshiSource,
    opts: Options,
    cfg: KakashiConfig,
    beliefs: BeliefsFile | None,
    recorder: Recorder | None = None,
) -> LiveBookSource | None:
    """With a key: the WebSocket books of the markets held, believed or named (``--ticker``) over
    the polled rows (``adapters/kalshi/ws.py``); the polled rows alone when it is not there. A
    ``recorder`` gets its trade prints and every book change it applied."""
    from kakashi_tui.adapters.kalshi.ws import WS_PATH, BookFeed, LiveBookSource, ws_url_for

    signer = source.client.signer
    if signer is None:
        return None
    url = cfg.kalshi.ws_url or ws_url_for(api_base(opts, cfg))
    feed = BookFeed(
        url,
        lambda: signer.headers("GET", WS_PATH),
        backoff_base=cfg.kalshi.backoff_base_s,
        # every book change is kept between fetches (from the first snapshot: a recording starts
        # rebuildable), for the recording and for the paper orders' tape (issue #23)
        record_books=True,
        lifecycle=True,  # market_lifecycle_v2: its event_fee_update frames go to the source's fees
    )
    named = set(opts.tickers)
    return LiveBookSource(
        source,
        feed,
        also=lambda: (beliefs.tickers() if beliefs else set()) | named,
        on_trades=recorder.trades if recorder is not None else None,
        on_book_events=recorder.book_events if recorder is not None else None,
        on_fee_update=source.apply_ws,
        on_lifecycle=source.apply_lifecycle,
    )


def build_engine(
    opts: Options,
    cfg: KakashiConfig,
    store: Store | None = None,
    notes: list[str] | None = None,
    interval: float | None = None,
    recording: Callable[[], Recorder] | None = None,
) -> Engine:
    """The engine over the source ``opts`` names, its estimators, and ``store`` (or the
    database ``opts`` names). The object graph is built here once: the recorder ``recording``
    makes (once the database has been opened and checked) wraps the source and the estimators
    (composition) before the engine is made, and the engine hands the source its held markets
    (``Source.watch``) as it is made."""
    from kakashi_tui.adapters.beliefs import BeliefsFile
    from kakashi_tui.adapters.kalshi.source import KalshiSource
    from kakashi_tui.adapters.sim import SimNoise, SimOracle
    from kakashi_tui.adapters.store.writer import Store
    from kakashi_tui.trading.engine import Engine

    recorder: Recorder | None = None

    def made(source: Source, estimators: list[Estimator]) -> Engine:
        if recorder is not None:
            source, estimators = recorder.wrap(source, estimators)
        engine = Engine(opened, source, estimators, cfg.engine_config())
        if recorder is not None:  # where a replay of the catalog starts its clock, and the settings (#23)
            recorder.run_started(engine.started_ms, recorded_settings(cfg), source.name)
        return engine

    if opts.source == "sim" and (opts.series or opts.events):  # refused before any file is made
        raise ConfigError("--series and --event narrow Kalshi's listing; the simulator has neither (use --ticker)")
    if opts.source == "sim" and opts.beliefs:  # it would be ignored: the simulator's oracle gives p_hat
        raise ConfigError("--beliefs gives p_hat for Kalshi's markets; the simulator has its own (use --source kalshi)")
    store = opened = store or Store(db_path(opts, cfg))
    try:
        recorder = recording() if recording is not None else None
        if opts.source == "sim":
            sim = build_sim(store, opts, cfg, notes, recorder)
            forecaster = SimNoise if cfg.sim.forecaster == "noise" else SimOracle
            engine = made(sim, [forecaster(sim, noise=cfg.sim.oracle_noise, seed=sim.seed)])
            if notes is not None and (note := bankroll_note(engine, cfg)):
                notes.append(note)
            return engine
        if opts.source == "kalshi":
            beliefs_path = settings(opts, cfg).beliefs
            beliefs = BeliefsFile(beliefs_path) if beliefs_path else None
            client, notice = build_kalshi_client(opts, cfg)
            source = KalshiSource(
                client,
                tickers=opts.tickers,
                series=opts.series,
                events=opts.events,
                depth_for=(beliefs.tickers if beliefs else None),
                interval_s=default_interval(opts.source, False) if interval is None else interval,
                book_all=opts.book_all,
                # without a key no WebSocket streams the prints: polled, for the recording (with one,
                # LiveBookSource has them polled only while the WebSocket is down: prints_fallback)
                on_trades=recorder.trades if recorder is not None and client.signer is None else None,
            )  # (the believed markets a fetch can refresh at the client's rate follow from it)
            if notice:
                source.notices.insert(0, notice)
            if notes is not None:  # said once, on stderr, on the desk and in the log
                notes.extend(source.notices)
            live = live_books(source, opts, cfg, beliefs, recorder)
            engine = made(live or source, [beliefs] if beliefs else [])
            if live is not None:
                live.start()  # subscribed before the first poll
            return engine
        raise ConfigError(f"unknown source {opts.source!r}: use sim or kalshi")
    except BaseException:
        if recorder is not None:
            recorder.close()
        store.close()
        raise


def catalog_dir(opts: Options, cfg: KakashiConfig) -> str:
    """The market-data catalog: command line > config file > ``catalog/`` beside the database."""
    from kakashi_tui.adapters.catalog import default_catalog_dir

    s = settings(opts, cfg)
    return s.catalog or str(default_catalog_dir(s.db))


def make_recorder(opts: Options, cfg: KakashiConfig, log: Callable[[str], None] | None = None) -> Recorder:
    """A recorder into the catalog ``opts`` and ``cfg`` name (``build_engine`` wraps with it);
    ``[catalog] keep_days`` removes old dates at each roll, said through ``log``."""
    from kakashi_tui.adapters.catalog import CatalogWriter, Recorder

    writer = CatalogWriter(
        catalog_dir(opts, cfg), roll_s=cfg.catalog.roll_seconds, keep_days=cfg.catalog.keep_days, on_note=log
    )
    return Recorder(writer)


def prune_market_data(store: Store, keep_days: int) -> str | None:
    """``[store] keep_market_data_days``: the old quotes and beliefs removed (``Store.prune_market_data``),
    in one line for the operator (None when there were none)."""
    import time

    t0 = time.monotonic()
    quotes, beliefs, cut = store.prune_market_data(keep_days)
    if cut is None or not (quotes or beliefs):
        return None
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(cut / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{store.path}: removed {quotes:,} quotes and {beliefs:,} beliefs from before {when} in "
        f"{time.monotonic() - t0:.1f}s ([store] keep_market_data_days = {keep_days}; each market's newest kept)"
    )


def default_interval(source: str, desk: bool) -> float:
    """Seconds between ticks: the simulator flat out headless, 0.5 s in the desk; Kalshi 5 s."""
    if source != "sim":
        return 5.0
    return 0.5 if desk else 0.0


def build_service(
    opts: Options,
    cfg: KakashiConfig,
    *,
    interval: float | None = None,
    ticks: int | None = None,
    desk: bool = False,
    view_hz: float = 4.0,
    log: Callable[[str], None] | None = None,
) -> tuple[TradingService, Callable[[], None]]:
    """The trading service over a freshly built engine, and the one function that closes it
    (the catalog recorder if ``opts.record``, source, then store). Settings notes are printed
    once, here."""
    service, close, _recorder = _build_service(
        opts, cfg, interval=interval, ticks=ticks, desk=desk, view_hz=view_hz, log=log
    )
    return service, close


def build_collector(opts: Options, cfg: KakashiConfig) -> tuple[TradingService, Recorder, Callable[[], None]]:
    """``kakashi record``: the service (collect passes only: it never trades) and its recorder."""
    opts.record = True
    service, close, recorder = _build_service(opts, cfg)
    assert recorder is not None
    return service, recorder, close


def _build_service(
    opts: Options,
    cfg: KakashiConfig,
    *,
    interval: float | None = None,
    ticks: int | None = None,
    desk: bool = False,
    view_hz: float = 4.0,
    log: Callable[[str], None] | None = None,
) -> tuple[TradingService, Callable[[], None], Recorder | None]:
    from kakashi_tui.trading.service import TradingService

    notes: list[str] = []
    interval = default_interval(opts.source, desk) if interval is None else interval
    recorders: list[Recorder] = []

    def recording() -> Recorder:
        recorders.append(make_recorder(opts, cfg, log or warn))
        return recorders[0]

    engine = build_engine(opts, cfg, notes=notes, interval=interval, recording=recording if opts.record else None)
    recorder = recorders[0] if recorders else None
    if cfg.store.keep_market_data_days is not None:  # retention, before the first tick
        try:
            if said := prune_market_data(engine.store, cfg.store.keep_market_data_days):
                notes.append(said)
        except BaseException:
            if recorder is not None:
                recorder.close()
            engine.source.close()
            engine.store.close()
            raise
    for n in notes:
        warn(n)
    service = TradingService(
        engine,
        interval=interval,
        max_ticks=ticks,
        max_consecutive_failures=cfg.engine.max_consecutive_failures,
        view_hz=view_hz,
        log=log or warn,
    )
    service.notes = notes

    def close() -> None:
        try:
            if recorder is not None:
                recorder.close()  # the last segment: what the feed saw since the last roll
        except OSError as e:
            warn(f"catalog: the last segment was not written ({e.strerror or e})")
        except KakashiError as e:  # (a table the writer could not write; the others were)
            warn(str(e))
        try:
            if service.running:  # the engine thread is stuck in a feed: do not wait on its client
                threading.Thread(target=engine.source.close, daemon=True).start()
            else:
                engine.source.close()
        finally:
            engine.store.close()

    return service, close, recorder


#: A replay commits this many ticks at a time (``TradingService.run_here``): a commit costs about
#: what a tick of a thousand rows does, and a replay stopped by a signal still commits what it did.
REPLAY_COMMIT_EVERY = 64


def replay_service(
    target: str | Store, source: Source, estimator: Estimator, cfg: KakashiConfig
) -> tuple[TradingService, Callable[[], None]]:
    """The service over an engine fed by recorded data (``kakashi replay``, the benchmarks),
    writing into a new database (one that already holds a run is refused)."""
    from kakashi_tui.adapters.store.writer import Store
    from kakashi_tui.trading.engine import Engine
    from kakashi_tui.trading.service import TradingService

    store = target if isinstance(target, Store) else Store(target)
    try:
        if store.last_tick_ts() is not None:
            raise ConfigError(f"{store.path} already holds a run; replay into a new --db")
        engine = Engine(store, source, [estimator], cfg.engine_config())  # (it hands the source its held markets)
    except BaseException:
        store.close()
        raise
    service = TradingService(
        engine, interval=0.0, max_consecutive_failures=cfg.engine.max_consecutive_failures, log=warn
    )
    return service, store.close


def warn(msg: str) -> None:
    """One line on stderr; a feed's own ``warning: ...`` is not prefixed twice. The text may hold
    outside words (a server's message, a file name): escaped and bounded (core/text.py)."""
    print(f"kakashi: warning: {safe_text(msg.removeprefix('warning: '), 600)}", file=sys.stderr)
