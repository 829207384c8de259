"""Interpolation methods behind one signature, chosen by name.

Every method is called as ``method(frame0, frame1, times, boxes=None, background=None)`` on
H x W x 3 uint8 RGB frames and returns one frame per t in ``times`` (each in (0, 1)). Only
``rife-fg`` uses ``boxes`` (the two frames' foreground boxes, (x1, y1, x2, y2) exclusive
ends) and ``background``; the others ignore them. ``method.name`` says which one ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from interp.classical import DisConfig, DisInterpolator, linear_blend, repeat
from interp.foreground import Box, ForegroundConfig, interpolate_foreground

METHOD_NAMES = ("rife", "rife-fg", "dis", "blend", "repeat")
NEEDS_WEIGHTS = frozenset({"rife", "rife-fg"})


@dataclass(frozen=True)
class MethodConfig:
    """Options of every method.

    weights: RIFE flownet.pkl (None = the fetched registry file); scale: RIFE flow
    resolution knob (0.25, 0.5, 1, 2) of ``rife``; fg_scale: the same for ``rife-fg``;
    threads: torch CPU threads; device: torch device.
    """

    weights: Path | str | None = None
    scale: float = 1.0
    fg_scale: float = 1.0
    threads: int | None = 2
    device: str = "cpu"
    dis: DisConfig = field(default_factory=DisConfig)
    foreground: ForegroundConfig = field(default_factory=ForegroundConfig)


class Interpolator(Protocol):
    """What every method looks like."""

    name: str

    def __call__(self, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[float],
                 boxes: tuple[Box | None, Box | None] | None = None,
                 background: np.ndarray | None = None) -> list[np.ndarray]:
        """Frames at each t (H x W x 3 uint8 RGB)."""
        ...


class _Plain:
    """A whole-frame method (frame0, frame1, times) -> frames, adapted to the common call."""

    def __init__(self, name: str, fn) -> None:
        self.name = name
        self._fn = fn

    def __call__(self, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[float],
                 boxes: tuple[Box | None, Box | None] | None = None,
                 background: np.ndarray | None = None) -> list[np.ndarray]:
        return self._fn(frame0, frame1, times)


class _ForegroundRife:
    """RIFE on the (moving part of the) union of the foreground boxes only.

    Without boxes the whole frame is the candidate region, so only what moves is
    interpolated.
    """

    name = "rife-fg"

    def __init__(self, rife_call, config: ForegroundConfig) -> None:
        self._rife = rife_call
        self.config = config

    def __call__(self, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[float],
                 boxes: tuple[Box | None, Box | None] | None = None,
                 background: np.ndarray | None = None) -> list[np.ndarray]:
        if boxes is None:
            h, w = frame0.shape[:2]
            boxes = ((0, 0, w, h), None)
        return interpolate_foreground(self._rife, frame0, frame1, boxes[0], boxes[1], times,
                                      background, self.config)


def _rife_call(config: MethodConfig, scale: float):
    """(frame0, frame1, times) -> frames with the RIFE weights (raises if they are missing)."""
    from interp.ifnet import check_scale
    from interp.rife import Rife

    check_scale(scale)
    rife = Rife(config.weights, device=config.device, threads=config.threads)

    def call(frame0: np.ndarray, frame1: np.ndarray, times: Sequence[float]) -> list[np.ndarray]:
        return rife.interpolate_batch([frame0], [frame1], times, scale)[0]

    return call


def make_interpolator(name: str, config: MethodConfig = MethodConfig()) -> Interpolator:
    """The method called ``name`` (one of METHOD_NAMES).

    rife and rife-fg load the weights now: a missing file raises jscc.zoo.ModelFileError,
    a file of another RIFE release raises interp.ifnet.WeightsError.
    """
    if name == "rife":
        return _Plain("rife", _rife_call(config, config.scale))
    if name == "rife-fg":
        return _ForegroundRife(_rife_call(config, config.fg_scale), config.foreground)
    if name == "dis":
        return _Plain("dis", DisInterpolator(config.dis))
    if name == "blend":
        return _Plain("blend", linear_blend)
    if name == "repeat":
        return _Plain("repeat", repeat)
    raise ValueError(f"unknown interpolation method {name!r}: choose one of "
                     f"{', '.join(METHOD_NAMES)}")


def make_with_fallback(name: str, fallback: str = "dis", config: MethodConfig = MethodConfig()
                       ) -> tuple[Interpolator, str | None]:
    """``name``, or ``fallback`` when ``name`` needs RIFE weights that are absent or unusable.

    Returns the interpolator and, when the fallback was taken, a one-line reason to report.
    """
    from interp.ifnet import WeightsError
    from jscc.zoo import ModelFileError

    if fallback in NEEDS_WEIGHTS:
        raise ValueError(f"fallback {fallback!r} needs RIFE weights itself: pick dis, blend or "
                         "repeat")
    try:
        return make_interpolator(name, config), None
    except (ModelFileError, WeightsError, FileNotFoundError) as exc:
        if name not in NEEDS_WEIGHTS:
            raise
        return make_interpolator(fallback, config), f"{name} unavailable ({exc}); using {fallback}"
