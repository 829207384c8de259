"""Bookkeeping: what happened to every frame, what went on the channel, and latency.

Every frame index gets exactly one outcome: delivered, or dropped with a reason.
Channel uses are complex channel symbols; side information (modes, ids, boxes, rate
levels, mask bits) is counted at 1 bit per channel use (``SIDE_BITS``).
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from jscc.digital import background_link
from stream.core import payload, temporal, wire

# Side-information bits per field, at 1 bit per channel use. Sizes and coordinates take
# 12 bits (sides up to 4096 px); SNR is sent with 8 bits; the frame index modulo 2^16.
SIDE_BITS = {"index": 16, "mode": 2, "segment": 16, "background": 16, "rate_level": 3,
             "snr": 8, "box": 4 * 12, "size": 2 * 12}


def frame_side_bits(msg: wire.FrameMsg) -> int:
    """Side-information bits of one frame message (mask bits and the temporal cell map
    included)."""
    bits = SIDE_BITS["index"] + SIDE_BITS["mode"] + SIDE_BITS["segment"] + \
        SIDE_BITS["background"]
    if msg.symbols.size or msg.cells:
        bits += SIDE_BITS["rate_level"] + SIDE_BITS["snr"] + SIDE_BITS["size"]
        if msg.mode == wire.Mode.KEY:
            bits += SIDE_BITS["box"]
    if msg.mask is not None:
        bits += int(msg.mask.size)
    bits += 8 * len(msg.gain)  # the exposure gain (dynbg.exposure), when sent
    return bits + temporal.side_bits(msg.cells)


def background_side_bits() -> int:
    """Side-information bits of a background update (ids, size, rate level, SNR)."""
    return (SIDE_BITS["segment"] + SIDE_BITS["background"] + SIDE_BITS["size"]
            + SIDE_BITS["rate_level"] + SIDE_BITS["snr"])


class AccountingError(RuntimeError):
    """A frame was given two outcomes (a bug in the caller)."""


@dataclass
class FrameLedger:
    """Outcome of every frame index: delivered, or dropped with a reason."""

    delivered: int = 0
    dropped: Counter = field(default_factory=Counter)
    _seen: set = field(default_factory=set, repr=False)
    _dropped_at: dict = field(default_factory=dict, repr=False)  # reason -> indices

    def _mark(self, index: int) -> None:
        if index in self._seen:
            raise AccountingError(f"frame {index} already has an outcome")
        self._seen.add(index)

    def deliver(self, index: int) -> None:
        """Frame ``index`` reached the output."""
        self._mark(index)
        self.delivered += 1

    def drop(self, index: int, reason: str) -> None:
        """Frame ``index`` will never reach the output, because of ``reason``."""
        self._mark(index)
        self.dropped[reason] += 1
        self._dropped_at.setdefault(reason, []).append(index)

    def dropped_runs(self, limit: int = wire.MAX_DROP_RUNS) -> dict[str, tuple]:
        """Dropped indices per reason as runs (first index, length) of consecutive
        indices, at most ``limit`` runs in all (the reasons listed first keep theirs)."""
        out: dict[str, tuple] = {}
        for reason, indices in self._dropped_at.items():
            runs: list[tuple[int, int]] = []
            for i in sorted(indices):
                if runs and runs[-1][0] + runs[-1][1] == i:
                    runs[-1] = (runs[-1][0], runs[-1][1] + 1)
                else:
                    runs.append((i, 1))
            runs = runs[:limit]
            limit -= len(runs)
            if runs:
                out[reason] = tuple(runs)
        return out

    def has(self, index: int) -> bool:
        """Whether frame ``index`` already has an outcome."""
        return index in self._seen

    @property
    def accounted(self) -> int:
        """Frames with an outcome."""
        return len(self._seen)

    def unaccounted(self, total: int) -> int:
        """Frames among indices 0..total-1 without an outcome."""
        return total - sum(1 for i in self._seen if 0 <= i < total)


@dataclass
class ChannelLedger:
    """Channel uses by what they carried, and frames by mode."""

    frame_uses: int = 0        # JSCC symbols of crops and whole frames
    background_uses: int = 0   # JSCC symbols of background updates
    side_uses: int = 0         # side information, 1 bit per use
    source_values: int = 0     # 3 x H x W of every source frame read
    background_updates: int = 0
    modes: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """All channel uses."""
        return self.frame_uses + self.background_uses + self.side_uses

    def add_frame(self, msg: wire.FrameMsg) -> int:
        """Count a frame message; returns its channel uses (symbols + side bits)."""
        side = frame_side_bits(msg)
        self.frame_uses += int(msg.symbols.size)
        self.side_uses += side
        self.modes[msg.mode.name.lower()] += 1
        return int(msg.symbols.size) + side

    def add_message(self, msg: wire.Message) -> int:
        """Count a frame or background message as it crosses the link (JSCC and coded
        backgrounds by the symbols their payload states); returns its channel uses."""
        if isinstance(msg, wire.FrameMsg):
            return self.add_frame(msg)
        if isinstance(msg, wire.Background) and msg.kind == wire.BackgroundKind.JSCC:
            return self.add_background(payload.symbol_count(msg.payload))
        if isinstance(msg, wire.Background) and msg.kind == wire.BackgroundKind.CODED:
            return self.add_background(background_link.channel_uses(msg.payload))
        return 0

    def add_background(self, symbols: int) -> int:
        """Count a background update of ``symbols`` JSCC symbols; returns its channel uses."""
        side = background_side_bits()
        self.background_uses += symbols
        self.side_uses += side
        self.background_updates += 1
        return symbols + side

    def add_skip(self) -> None:
        """Count a skipped frame (nothing on the channel)."""
        self.modes["skip"] += 1

    def summary(self, frames: int) -> dict:
        """JSON-ready totals; per-frame figures over ``frames`` source frames."""
        per = max(frames, 1)
        return {"channel_uses_total": self.total,
                "channel_uses_per_frame": self.total / per,
                "channel_uses": {"frames": self.frame_uses, "backgrounds": self.background_uses,
                                 "side_info": self.side_uses},
                "source_values_total": self.source_values,
                "compression_ratio": self.source_values / self.total if self.total else None,
                "background_updates": self.background_updates,
                "modes": {m: self.modes.get(m, 0) for m in ("key", "direct", "skip")}}


@dataclass
class LatencyStats:
    """Latencies in milliseconds, in arrival order."""

    values: list = field(default_factory=list)

    def add(self, ms: float) -> None:
        """Record one latency (ms)."""
        self.values.append(float(ms))

    def summary(self) -> dict:
        """Median, 90th percentile and max (ms); ``growth_ms``: median of the last fifth
        minus median of the first fifth (latency creeping up shows as a positive value)."""
        v = self.values
        if not v:
            return {"latency_ms_median": None, "latency_ms_p90": None, "latency_ms_max": None,
                    "latency_growth_ms": None}
        fifth = max(1, len(v) // 5)
        return {"latency_ms_median": round(statistics.median(v), 2),
                "latency_ms_p90": round(float(np.percentile(v, 90)), 2),
                "latency_ms_max": round(max(v), 2),
                "latency_growth_ms": round(statistics.median(v[-fifth:])
                                           - statistics.median(v[:fifth]), 2)}
