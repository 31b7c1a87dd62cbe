"""The status line: what the desk is doing, whether its data is alive, and when."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from kakashi_tui.frontends.desk.widgets.base import Palette
from kakashi_tui.frontends.fmt import fmt_clock, fmt_hms
from kakashi_tui.trading.liveness import OK, SLOW, Liveness
from kakashi_tui.trading.view import DeskView


class StatusBar(Static):
    """One line: what the desk is doing, whether its data is alive, and when (labelled).

    Segments drop by priority when the terminal is narrow: the state and a dead feed never do.
    """

    view: reactive[DeskView | None] = reactive(None, layout=False)
    halted_reason: reactive[str] = reactive("")
    feed_down_since: reactive[int | None] = reactive(None)
    zone: reactive[str] = reactive("utc")
    # The heartbeat (liveness.py), read once a second while the engine's thread runs: what is
    # late, if anything, and how old the last completed tick is (None: not running).
    liveness: reactive[Liveness] = reactive(Liveness(OK))
    tick_age_s: reactive[int | None] = reactive(None)

    def render(self) -> Text:
        pal = Palette(self)
        v = self.view
        if v is None:
            return Text(" KAKASHI · PAPER │ starting…")
        state = f"HALTED ({self.halted_reason})" if self.halted_reason else v.state
        # (priority: lower survives longer, text, style)
        parts: list[tuple[int, str, str]] = [(0, f"{v.source}", "bold"), *feed_segments(v, pal), (0, state, "bold")]
        if v.key_refused:  # no books, no fills until the key works: never dropped; why, where there is room
            parts.append((0, "KEY REFUSED", f"bold {pal.down} reverse"))
            why = v.key_refused.rsplit("): ", 1)[-1]
            parts.append((2, why if len(why) <= 40 else why[:39] + "…", pal.down))
        if v.halted_shards:  # an exchange shard halted: its markets are not decided (never dropped)
            parts.append((0, v.shards_text, f"bold {pal.warn} reverse"))
        late = self.liveness.label(lambda ms: fmt_hms(ms, self.zone))
        if late:
            parts.append((0, late, f"bold {pal.down if self.liveness.level != SLOW else pal.warn} reverse"))
        elif self.feed_down_since is not None:
            parts.append(
                (
                    0,
                    f"FEED DOWN since {fmt_hms(self.feed_down_since, self.zone)}",
                    f"bold {pal.warn} reverse",
                )
            )
        parts.append((1, fmt_clock(v.clock_ms, v.source, self.zone), ""))
        age = "" if self.tick_age_s is None else f" ({self.tick_age_s}s ago)"
        parts.append((3, f"tick {v.tick}{age}", ""))
        parts.append(
            (
                2,
                f"rejected {v.rejected_total}" + (" (x)" if v.rejected_total else ""),
                pal.warn if v.rejected_total else "",
            )
        )
        if v.feed_errors:
            parts.append((1, f"feed errors {len(v.feed_errors)} (log)", f"bold {pal.down}"))
        parts.append((4, f"fetch {v.latency_ms:.0f} ms", ""))
        head = " KAKASHI · PAPER "
        width = max(20, self.size.width or 200)
        keep = list(parts)
        while keep and len(head) + sum(len(t) + 3 for _p, t, _s in keep) > width:
            worst = max(p for p, _t, _s in keep)
            if worst == 0:
                break
            idx = max(i for i, (p, _t, _s) in enumerate(keep) if p == worst)
            keep.pop(idx)
        t = Text(head, style="bold")
        for _p, text, style in keep:
            t.append("│ ")
            t.append(text, style=style)
            t.append(" ")
        return t

    def _state_class(self) -> None:
        v = self.view
        kind = "halted" if self.halted_reason else (v.state_kind if v else "running")
        for k in ("running", "paused", "halted"):
            self.set_class(k == kind, f"-{k}")
        self.set_class(self.feed_down_since is not None or not self.liveness.ok, "-feed-down")

    def watch_view(self) -> None:
        self._state_class()

    def watch_halted_reason(self) -> None:
        self._state_class()

    def watch_feed_down_since(self) -> None:
        self._state_class()

    def watch_liveness(self) -> None:
        self._state_class()


def feed_segments(v: DeskView, pal: Palette, width: int = 24) -> list[tuple[int, str, str]]:
    """Which feed is live, for the status bar (priority, text, style): ``websocket`` and its live
    books; ``polling (ws down)`` in the warning colour, never dropped, and why when there is room;
    a plain ``polling`` (no key) goes before the tick count. The simulator's name says it all."""
    feed = v.feed
    if feed.kind == "simulated":
        return []
    if feed.kind == "websocket":
        return [(1, "websocket", ""), *([(4, feed.detail, "")] if feed.detail else [])]
    if feed.degraded:
        state, _, why = feed.detail.partition(": ")  # "websocket down: <Error>: <why>": the last part
        why = why.rsplit(": ", 1)[-1]  # ("HTTP 503", "[Errno 111] Connect call failed ...")
        why = why if len(why) <= width else why[: width - 1] + "…"
        return [
            (0, f"polling ({state.replace('websocket', 'ws', 1)})", f"bold {pal.warn}"),
            *([(3, why, pal.warn)] if why else []),
        ]
    return [(3, feed.label, "")]
