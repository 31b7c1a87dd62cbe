"""What Kalshi last said about fees beyond each series' own: the series' scheduled changes
(``GET /series/fee_changes``) and the events' overrides (``GET /events/fee_changes``, an
event's own ``fee_*_override`` fields, the WebSocket's ``event_fee_update``). ``in_force`` gives
a market's fee at a time through ``core/fees.py``'s one rule (``fee_level_at``); the source
writes it into the market row, so the engine, ``kakashi status`` and the report read one fee.

Kalshi lists only upcoming series changes: one whose time has passed drops off the list, while
the series' own fee (cached) may not show it yet. So a change stays here past its time until
the series is read again after it (``saw_series``), and a change that vanishes before its time
was withdrawn and is forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from kakashi_tui.adapters.kalshi.schemas import EventFeeChange, EventFeeOverride, SeriesFeeChange
from kakashi_tui.adapters.kalshi.wire import Fees
from kakashi_tui.core.fees import FeeChange, FeeLevel, fee_level_at


def _mult(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


@dataclass(frozen=True)
class _Change:
    key: str  # Kalshi's id (or the change itself when it has none)
    change: FeeChange


@dataclass
class FeeState:
    schedule: dict[str, list[_Change]] = field(default_factory=dict)  # series -> its changes
    series_read_ms: dict[str, int] = field(default_factory=dict)  # when its own fee was read
    event_changes: dict[str, list[FeeChange]] = field(default_factory=dict)  # GET /events/fee_changes
    event_now: dict[str, FeeChange] = field(default_factory=dict)  # the event's / WebSocket's, as read
    #: bumped whenever what is known changes (with ``due``: a source remakes its markets' rows then)
    version: int = 0

    # -- what Kalshi said ------------------------------------------------------------------
    def saw_series(self, series: str, now_ms: int) -> None:
        """The series' own fee was read at ``now_ms``: the changes due by then are in it."""
        self.series_read_ms[series] = now_ms
        was = self.schedule.get(series)
        kept = [c for c in was or () if c.change.ts > now_ms]
        if kept:
            self.schedule[series] = kept
        else:
            self.schedule.pop(series, None)
        if (was or []) != kept:
            self.version += 1

    def set_series_changes(self, changes: Iterable[SeriesFeeChange], now_ms: int) -> None:
        """A fresh ``GET /series/fee_changes``: its changes replace the upcoming ones; a change no
        longer listed whose time has passed stays until its series is read again after it."""
        fresh: dict[str, list[_Change]] = {}
        for c in changes:
            fc = FeeChange(c.scheduled_ts, c.fee_type, _mult(c.fee_multiplier))
            fresh.setdefault(c.series_ticker, []).append(_Change(c.id or repr(fc), fc))
        for series, old in self.schedule.items():
            listed = {c.key for c in fresh.get(series, ())}
            read = self.series_read_ms.get(series, 0)
            for kept in old:
                if kept.key not in listed and read < kept.change.ts <= now_ms:
                    fresh.setdefault(series, []).append(kept)
        if fresh != self.schedule:
            self.version += 1
        self.schedule = fresh

    def set_event_changes(self, changes: Iterable[EventFeeChange]) -> None:
        """A fresh ``GET /events/fee_changes``: the events' scheduled overrides."""
        fresh: dict[str, list[FeeChange]] = {}
        for c in changes:
            fresh.setdefault(c.event_ticker, []).append(_override(c, c.scheduled_ts))
        if fresh != self.event_changes:
            self.version += 1
        self.event_changes = fresh

    def event_override(self, o: EventFeeOverride, ts: int) -> None:
        """An event's override as read at ``ts`` (its own fields, or ``event_fee_update``): in
        force from then, over any earlier; null fields cleared."""
        now = self.event_now.get(o.event_ticker)
        if now is None or now.ts <= ts:
            new = _override(o, ts)
            if now is None or (now.fee_type, now.multiplier) != (new.fee_type, new.multiplier):
                self.version += 1
            self.event_now[o.event_ticker] = new

    def due(self, t: int) -> int:
        """How many known changes have come into force by ``t`` (it grows as one does)."""
        n = sum(c.change.ts <= t for cs in self.schedule.values() for c in cs)
        return n + sum(c.ts <= t for cs in self.event_changes.values() for c in cs)

    # -- the fee in force ------------------------------------------------------------------
    def in_force(self, series_fees: Fees, series: str, event: str | None, t: int) -> Fees:
        """The market's fee at ``t``: its series' (``series_fees``), then the series' changes due,
        then the event's latest override due (``core/fees.fee_level_at``)."""
        sched = self.schedule.get(series) if series else None
        changes = self.event_changes.get(event) if event else None
        now = self.event_now.get(event) if event else None
        if not sched and not changes and now is None:
            return series_fees  # (nearly every market: no work)
        overrides = [*(changes or ()), *((now,) if now is not None else ())]
        level = fee_level_at(
            FeeLevel(series_fees.fee_type, _mult(series_fees.fee_multiplier)),
            [c.change for c in sched or ()],
            overrides,
            t,
        )
        return Fees(level.fee_type, None if level.multiplier is None else str(level.multiplier))


def _override(o: EventFeeOverride, ts: int) -> FeeChange:
    return FeeChange(ts, o.fee_type_override, _mult(o.fee_multiplier_override))
