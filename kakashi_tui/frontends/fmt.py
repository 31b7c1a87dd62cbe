"""How every front-end writes numbers and times for people: prices, EVs, ages, durations,
signed dollars, UTC times, and the engine's stored texts in dollars. One home, used by the
desk, the post-mortem, the log file and the command line alike (pure: no I/O, no Textual)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from kakashi_tui.core.money import fmt_cc
from kakashi_tui.core.text import safe_text


def fmt_utc(ms: int | None, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    """Epoch ms as UTC text; "—" for no time."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime(fmt)


def fmt_price(p: Decimal | None) -> str:
    """0.42 on the cent grid, 0.4230 / 0.0030 off it (a sub-cent price is never rounded away)."""
    if p is None:
        return "—"
    return f"{p:.2f}" if p == p.quantize(_CENT) else f"{p:.4f}"


_CENT = Decimal("0.01")


EV_PLACES = 2  # an EV per contract is shown to the cent ...
EV_PLACES_MAX = 4  # ... or to the centicent (the ledger's grid) where the cent would mislead


def ev_places(ev: Decimal, threshold: Decimal | None) -> int:
    """The decimals that show ``ev`` on its own side of the edge ``threshold`` (``ev >= threshold``
    trades): the cent, unless rounding to it lands on the other side or on the threshold itself
    (``+0.03`` for 0.0298 under ``≥ +0.03``, which does not trade); then as many as it takes."""
    if threshold is None:
        return EV_PLACES
    above = ev >= threshold
    for places in range(EV_PLACES, EV_PLACES_MAX + 1):
        if (ev.quantize(Decimal(1).scaleb(-places)) >= threshold) == above:
            return places
    return EV_PLACES_MAX


def fmt_ev(ev: Decimal | None, threshold: Decimal | None = None) -> str:
    """An EV per contract, signed: ``+0.05``, or ``+0.0298`` next to a ``≥ +0.03`` threshold (the
    digits that decide, ``ev_places``). Past the centicent it is rounded toward its own side of
    the threshold, so what is shown never says the other thing."""
    if ev is None:
        return "—"
    places = ev_places(ev, threshold)
    q = ev.quantize(Decimal(1).scaleb(-places))
    if threshold is not None and (q >= threshold) != (ev >= threshold):
        q = ev.quantize(q, rounding=ROUND_FLOOR if ev < threshold else ROUND_CEILING)
    return f"{q:+.{places}f}"


def fmt_threshold(threshold: Decimal) -> str:
    """An edge threshold with all its digits, at least the cent's: ``+0.03``, ``+0.025``."""
    return f"{threshold:+.{max(EV_PLACES, -int(threshold.normalize().as_tuple().exponent))}f}"


PCT_PLACES = 1  # a percentage is shown to a tenth of a point ...
PCT_PLACES_MAX = 3  # ... or to as many places as its error or its bound needs, up to a thousandth


def fmt_pct_pm(p: float, se: float) -> str:
    """A share (0 to 1) as a percentage with its standard error: ``68.5% ± 0.7%``. The one rule for
    every ± a front-end prints: the value takes the decimals the error needs to show a digit that is
    not zero (``99.94% ± 0.04%``, never ``± 0.0%``, which reads as certainty), up to
    ``PCT_PLACES_MAX``; an error smaller still is said to be: ``± < 0.001%``."""
    err = 100 * abs(se)
    for places in range(PCT_PLACES, PCT_PLACES_MAX + 1):
        if round(err, places) > 0:
            return f"{100 * p:.{places}f}% ± {err:.{places}f}%"
    if err == 0:
        return f"{100 * p:.{PCT_PLACES}f}% ± 0 (exact)"
    return f"{100 * p:.{PCT_PLACES_MAX}f}% ± < {10.0**-PCT_PLACES_MAX:.{PCT_PLACES_MAX}f}%"


def fmt_pct_bound(x: float, above: bool = False) -> str:
    """A bound on a share as a percentage, rounded outward so it never claims more than it knows:
    an upper bound up (``< 0.2%`` for 0.15%, not ``< 0.1%``), a lower one (``above``) down
    (``> 99.8%`` for 99.85%); to the first digit that is not zero of its distance from 0 (or
    from 100%), one to ``PCT_PLACES_MAX`` places."""
    v = 100 * x
    gap = 100 - v if above else v
    places = PCT_PLACES
    while places < PCT_PLACES_MAX and 0 < gap < 10.0**-places:
        places += 1
    q = Decimal(repr(v)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_FLOOR if above else ROUND_CEILING)
    return f"{'>' if above else '<'} {q}%"


def fmt_age(ms: int) -> str:
    """A quote's age in at most four characters (the markets table never cuts it): ``59s``,
    ``59m``, ``99h``, then days (a held market's last quote from before a long stop)."""
    s = ms // 1000
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 100 * 3600:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def fmt_duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    if ms <= 0:
        return "closed"
    m = ms // 60_000
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m"
    return f"{h // 24}d"


def key_line(refused: str) -> str:
    """What a refused API key says to the operator (the exchange's reason), or its recovery
    (``refused`` empty): one wording for the desk's alert and the headless log."""
    if refused:  # the exchange's words: escaped and bounded (core/text.py)
        return f"KEY REFUSED: {safe_text(refused)} (no books, no paper fills; tried again with backoff)"
    return "Kalshi accepts the API key again"


DESK_HINTS = ("p resumes", "r re-arms")
COMMAND_HINTS = ("`kakashi resume` resumes", "`kakashi rearm` re-arms")


def restored_line(r, zone: str = "utc", hints: tuple[str, str] = DESK_HINTS) -> str:
    """A restart in one line, in plain words (``r``: ``trading.service.Restored``; times in UTC or
    the ``zone`` named; ``hints``: how to resume and re-arm, the desk's keys or the commands):
    ``resumed: PAUSED since 10:00:00 (by cli); p resumes | 4 open positions | today -$12.34
    (daily cap $50.00) | last tick 10:05:00 (#412)``."""

    def when(ms: int | None) -> str:
        return fmt_time(ms, zone, "%Y-%m-%d %H:%M:%S")

    state = r.state
    if r.since_ms is not None:
        state += f" since {when(r.since_ms)}"
    if r.state_kind == "paused":
        state += f" (by {safe_text(r.by, 60)}); {hints[0]}"
    elif r.killed:
        state += f"; {hints[1]}"
    n = r.open_positions
    return (
        f"resumed: {state} | {n} open position{'' if n == 1 else 's'} | "
        f"today {fmt_signed(r.today_pnl_cc)} (daily cap {fmt_cc(r.daily_cap_cc)}) | "
        f"last tick {when(r.last_tick_ms)} (#{r.ticks})"
    )


def fmt_signed(cc: int) -> str:
    """Centicents as signed dollars: ``+$1.50``, ``-$0.07``, ``$0.00``."""
    return ("+" if cc > 0 else "") + fmt_cc(cc)


_CC_FIELDS = re.compile(r"\b(equity|vs day start|day start|loss|cap)( )(-?\d+)\b")
_CENTS_SUFFIX = re.compile(r"(?<![\w.$])(-?\d+)c\b")


def dollars(text: str) -> str:
    """Amounts an older engine wrote in cents (``2267c lost``) in dollars (``$22.67 lost``)."""
    return _CENTS_SUFFIX.sub(lambda m: fmt_cc(int(m.group(1)) * 100), text)


def event_text(kind: str, detail: str) -> str:
    """An event's detail for people: the engine stores amounts in centicents (``equity 9698800 vs
    day start 10000000``, ``10000000 cc``); the report shows dollars, as everywhere else."""
    if kind == "deposit" and detail.removesuffix(" cc").strip().lstrip("-").isdigit():
        return fmt_cc(int(detail.removesuffix(" cc")))
    return dollars(_CC_FIELDS.sub(lambda m: f"{m.group(1)} {fmt_cc(int(m.group(3)))}", detail))


def fmt_hms(ms: int | None, zone: str = "utc") -> str:
    """A time of day for a status line: ``12:00:01`` in UTC, ``13:00:01 CET`` in local time."""
    return fmt_time(ms, zone).removesuffix(" UTC")


def fmt_clock(ms: int, source: str, zone: str = "utc", fmt: str = "%H:%M:%S") -> str:
    """The engine clock, labelled: ``sim`` time on the simulator (it runs ahead of the wall),
    ``replay`` time in a replay, ``wall`` time otherwise; in UTC or the operator's zone."""
    kind = "sim" if source.startswith("sim") else ("replay" if source.startswith("replay") else "wall")
    return f"{kind} {fmt_time(ms, zone, fmt)}"


def fmt_time(ms: int | None, zone: str = "utc", fmt: str = "%H:%M:%S") -> str:
    """Epoch ms as text in UTC or local time, the zone named (``UTC`` or e.g. ``CET``)."""
    if ms is None:
        return "—"
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if zone == "local":
        dt = dt.astimezone()
        return f"{dt.strftime(fmt)} {dt.tzname() or 'local'}"
    return f"{dt.strftime(fmt)} UTC"


def fmt_bytes(n: float) -> str:
    """A size as people read it: ``812 B``, ``3.4 KiB``, ``96.8 MiB``, ``41.2 GiB``, ``1.3 TiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
