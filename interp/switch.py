"""Runtime on/off switch for receiver-side interpolation.

The sender keeps every ``skip``-th frame. While the switch is on, the receiver fills each gap
between two received frames with ``skip - 1`` interpolated frames, so its output rate is the
input rate times ``skip``; while off it shows only what it receives. Any thread may flip the
switch; the receiver reads it once per gap, so a flip takes effect at the next gap.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from interp.foreground import Box
from interp.frames import skip_times
from interp.methods import Interpolator


class InterpolationSwitch:
    """Thread-safe toggle around an interpolator for skip factor ``skip`` (>= 2)."""

    def __init__(self, interpolator: Interpolator, skip: int, enabled: bool = True) -> None:
        self._times = skip_times(skip)
        self.skip = skip
        self.interpolator = interpolator
        self._enabled = enabled
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether gaps are being filled."""
        with self._lock:
            return self._enabled

    def set_enabled(self, on: bool) -> None:
        """Turn interpolation on or off from any thread (takes effect at the next gap)."""
        with self._lock:
            self._enabled = bool(on)

    def toggle(self) -> bool:
        """Flip the switch; returns the new state."""
        with self._lock:
            self._enabled = not self._enabled
            return self._enabled

    def output_fps(self, input_fps: float, enabled: bool | None = None) -> float:
        """Output frame rate (frames/s) for ``input_fps`` received frames/s, now or for a state."""
        on = self.enabled if enabled is None else enabled
        return input_fps * self.skip if on else input_fps

    def fill(self, frame0: np.ndarray, frame1: np.ndarray,
             boxes: tuple[Box | None, Box | None] | None = None,
             background: np.ndarray | None = None) -> list[np.ndarray]:
        """Frames to show between received frame0 and frame1 (H x W x 3 uint8 RGB each):
        ``skip - 1`` interpolated frames while on, none while off."""
        if not self.enabled:
            return []
        return self.interpolator(frame0, frame1, self._times, boxes, background)

    @property
    def times(self) -> Sequence[float]:
        """The instants i/skip filled in each gap."""
        return self._times
