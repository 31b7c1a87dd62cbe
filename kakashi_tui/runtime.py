"""Assemble an engine from configuration and command-line choices (shared by the CLI,
the desk and tests). Nothing here trades: it only wires adapters to the engine."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from kakashi_tui.adapters.beliefs import BeliefsFile
from kakashi_tui.adapters.kalshi import PRODUCTION_BASE, KalshiClient, KalshiSource
from kakashi_tui.adapters.kalshi_auth import signer_from
from kakashi_tui.adapters.sim import SimExchange, SimOracle
from kakashi_tui.adapters.store import Store, now_wall_ms
from kakashi_tui.config import KakashiConfig
from kakashi_tui.engine import Engine
from kakashi_tui.errors import ConfigError


@dataclass
class Options:
    source: str = "sim"
    db: str | None = None
    seed: int | None = None
    api_base: str | None = None
    beliefs: str | None = None
    tickers: list[str] = field(default_factory=list)
    sim_start_ms: int | None = None  # tests pin the simulated clock


def api_base(opts: Options, cfg: KakashiConfig) -> str:
    return opts.api_base or os.environ.get("KAKASHI_API_BASE") or cfg.kalshi.api_base or PRODUCTION_BASE


def db_path(opts: Options, cfg: KakashiConfig) -> str:
    return opts.db or os.environ.get("KAKASHI_DB") or cfg.db


def build_sim(store: Store, opts: Options, cfg: KakashiConfig) -> SimExchange:
    """The simulator resumes where this database left it: same seed, same clock, same tick."""
    stored_seed = store.get_control("sim_seed")
    seed = opts.seed if opts.seed is not None else (int(stored_seed) if stored_seed else cfg.sim.seed)
    if stored_seed is not None and int(stored_seed) != seed:
        raise ConfigError(f"{store.path} was created with --seed {stored_seed}; use that seed or another --db")
    start = store.get_control("sim_start_ms")
    start_ms = int(start) if start else (opts.sim_start_ms or (now_wall_ms() // 60_000) * 60_000)
    markets = int(store.get_control("sim_markets") or cfg.sim.markets)
    step_ms = int(store.get_control("sim_step_ms") or cfg.sim.step_seconds * 1000)
    with store.atomic():
        store.set_control("sim_seed", str(seed))
        store.set_control("sim_start_ms", str(start_ms))
        store.set_control("sim_markets", str(markets))
        store.set_control("sim_step_ms", str(step_ms))
    sim = SimExchange(seed=seed, markets=markets, start_ms=start_ms, step_ms=step_ms)
    sim.fast_forward(int(store.get_control("sim_tick") or 0))
    return sim


def build_kalshi_client(opts: Options, cfg: KakashiConfig) -> tuple[KalshiClient, str | None]:
    """The client, signing when credentials are set (environment first, then [kalshi]), and a
    notice when they are half set."""
    key_id = cfg.kalshi.api_key_id.get_secret_value() if cfg.kalshi.api_key_id is not None else None
    signer, notice = signer_from(key_id, cfg.kalshi.private_key_file)
    return KalshiClient(base_url=api_base(opts, cfg), timeout=cfg.kalshi.timeout_s,
                        max_retries=cfg.kalshi.max_retries, backoff_base=cfg.kalshi.backoff_base_s,
                        signer=signer, reads_per_s=cfg.kalshi.reads_per_s), notice


def build_engine(opts: Options, cfg: KakashiConfig, store: Store | None = None) -> Engine:
    store = store or Store(db_path(opts, cfg))
    try:
        if opts.source == "sim":
            sim = build_sim(store, opts, cfg)
            oracle = SimOracle(sim, noise=cfg.sim.oracle_noise, seed=sim.seed)
            return Engine(store, sim, [oracle], cfg.engine_config())
        if opts.source == "kalshi":
            beliefs_path = opts.beliefs or cfg.kalshi.beliefs
            beliefs = BeliefsFile(beliefs_path) if beliefs_path else None
            client, notice = build_kalshi_client(opts, cfg)
            source = KalshiSource(client, tickers=opts.tickers, depth_for=(beliefs.tickers if beliefs else None))
            if notice:  # the service shows source.notices once, on the desk and in the log
                source.notices.insert(0, notice)
            engine = Engine(store, source, [beliefs] if beliefs else [], cfg.engine_config())
            source.watch_for = engine.held_tickers
            return engine
        raise ConfigError(f"unknown source {opts.source!r}: use sim or kalshi")
    except BaseException:
        store.close()
        raise


def warn(msg: str) -> None:
    print(f"kakashi: warning: {msg}", file=sys.stderr)
