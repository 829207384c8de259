"""Foreground-only interpolation: run the interpolator on the union of the two frames'
foreground boxes and paste the result into the background (paper's lightweight receiver).

Boxes are (x1, y1, x2, y2) in frame pixels with exclusive ends, the convention of the key-
information crop records. Outside the box the frame is the given background, or the linear
blend of the two frames (exact for a static camera where nothing moves outside the box).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from interp.classical import linear_blend
from interp.frames import check_frame, check_pair, check_times, to_uint8

Box = tuple[int, int, int, int]
PairInterpolator = Callable[[np.ndarray, np.ndarray, Sequence[float]], list[np.ndarray]]


@dataclass(frozen=True)
class ForegroundConfig:
    """Foreground-path options.

    margin: pixels of context added on every side of the union box (flow needs to see the
    edge of a moving object). align: the region's sides are grown to multiples of this where
    the frame allows (32 = the network's own multiple, so no padding is wasted).
    feather: width (pixels) of the alpha ramp at the region's inner edges.
    motion_threshold: when set, the union box shrinks to the part of it that changes between
    the two frames (mean absolute gray difference over 4x4 blocks above this many levels,
    isolated blocks dropped): static parts of the foreground are left to the background.
    None keeps the whole union box.
    """

    margin: int = 16
    align: int = 32
    feather: int = 8
    motion_threshold: float | None = 16.0


def box_from_mask(mask: np.ndarray) -> Box | None:
    """Tight box around mask > 0 (H x W), or None when the mask is empty."""
    m = np.asarray(mask) > 0
    if m.ndim != 2:
        raise ValueError(f"mask must be H x W, got shape {m.shape}")
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def union_box(a: Box | None, b: Box | None) -> Box | None:
    """Smallest box holding both (None counts as empty)."""
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def moving_box(frame0: np.ndarray, frame1: np.ndarray, within: Box, threshold: float,
               block: int = 4) -> Box | None:
    """Box of the block x block cells inside ``within`` whose mean absolute gray difference
    between the frames exceeds ``threshold`` (0..255); None when nothing there moves."""
    x1, y1, x2, y2 = within
    g0 = cv2.cvtColor(frame0[y1:y2, x1:x2], cv2.COLOR_RGB2GRAY).astype(np.float32)
    g1 = cv2.cvtColor(frame1[y1:y2, x1:x2], cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = g0.shape
    small = (max(1, w // block), max(1, h // block))
    diff = cv2.resize(np.abs(g0 - g1), small, interpolation=cv2.INTER_AREA)
    moving = cv2.morphologyEx((diff > threshold).astype(np.uint8), cv2.MORPH_OPEN,
                              np.ones((2, 2), np.uint8))
    cells = box_from_mask(moving)
    if cells is None:
        return None
    sx, sy = w / small[0], h / small[1]
    return (x1 + int(cells[0] * sx), y1 + int(cells[1] * sy),
            x1 + min(w, int(np.ceil(cells[2] * sx))), y1 + min(h, int(np.ceil(cells[3] * sy))))


def _grow(lo: int, hi: int, size: int, margin: int, align: int) -> tuple[int, int]:
    """Expand [lo, hi) by margin, then to a multiple of align, staying inside [0, size)."""
    lo, hi = max(0, lo - margin), min(size, hi + margin)
    want = min(size, -(-(hi - lo) // align) * align)
    extra = want - (hi - lo)
    lo = max(0, lo - extra // 2)
    hi = lo + want
    if hi > size:
        lo, hi = size - want, size
    return lo, hi


def check_box(box: Box, height: int, width: int) -> None:
    """Raise ValueError unless box is non-empty and inside a height x width frame."""
    x1, y1, x2, y2 = box
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise ValueError(f"box {box} is empty or outside the {width}x{height} frame")


def region(box: Box, height: int, width: int, config: ForegroundConfig = ForegroundConfig()) -> Box:
    """The box actually interpolated: ``box`` plus margin, aligned, clipped to the frame."""
    check_box(box, height, width)
    x1, y1, x2, y2 = box
    x1, x2 = _grow(x1, x2, width, config.margin, config.align)
    y1, y2 = _grow(y1, y2, height, config.margin, config.align)
    return x1, y1, x2, y2


def _ramp(n: int, fade_lo: bool, fade_hi: bool, feather: int) -> np.ndarray:
    """1-D alpha of length n rising over ``feather`` pixels at the faded ends."""
    a = np.ones(n, np.float32)
    f = min(feather, n // 2)
    if f > 0:
        up = (np.arange(f, dtype=np.float32) + 0.5) / f
        if fade_lo:
            a[:f] = up
        if fade_hi:
            a[n - f:] = up[::-1]
    return a


def _alpha(reg: Box, height: int, width: int, feather: int) -> np.ndarray:
    """h x w alpha of the region: 1 inside, ramps at edges that are not the frame's border."""
    x1, y1, x2, y2 = reg
    ax = _ramp(x2 - x1, x1 > 0, x2 < width, feather)
    ay = _ramp(y2 - y1, y1 > 0, y2 < height, feather)
    return (ay[:, None] * ax[None, :])[..., None]


def interpolate_foreground(interpolate: PairInterpolator, frame0: np.ndarray, frame1: np.ndarray,
                           box0: Box | None, box1: Box | None, times: Sequence[float],
                           background: np.ndarray | None = None,
                           config: ForegroundConfig = ForegroundConfig()) -> list[np.ndarray]:
    """Frames at each t with only the union of box0 and box1 interpolated.

    frame0, frame1: H x W x 3 uint8 RGB; box0/box1: their foreground boxes (None = none).
    interpolate: any (crop0, crop1, times) -> crops interpolator (e.g. RIFE). background:
    H x W x 3 uint8 static background shown outside the boxes (inside them, and
    everywhere without a background, the linear blend of the frames at t shows where
    nothing moves).
    """
    check_pair(frame0, frame1)
    check_times(list(times))
    h, w = frame0.shape[:2]
    if background is not None:
        check_frame(background, "background")
        if background.shape != frame0.shape:
            raise ValueError(f"background {background.shape} differs from frame {frame0.shape}")
        outs = [background.copy() for _ in times]
    else:
        outs = linear_blend(frame0, frame1, times)
    for b in (box0, box1):
        if b is not None:
            check_box(b, h, w)
    box = union_box(box0, box1)
    if box is not None and background is not None:
        # the boxes show the frames (blended); only the rest is the static background
        bx1, by1, bx2, by2 = region(box, h, w, config)
        blends = linear_blend(frame0[by1:by2, bx1:bx2], frame1[by1:by2, bx1:bx2], times)
        for out, blend in zip(outs, blends, strict=True):
            out[by1:by2, bx1:bx2] = blend
    if box is not None and config.motion_threshold is not None:
        box = moving_box(frame0, frame1, box, config.motion_threshold)
    if box is None:
        return outs
    x1, y1, x2, y2 = reg = region(box, h, w, config)
    crops = interpolate(frame0[y1:y2, x1:x2], frame1[y1:y2, x1:x2], times)
    alpha = _alpha(reg, h, w, config.feather)
    for out, crop in zip(outs, crops, strict=True):
        under = out[y1:y2, x1:x2].astype(np.float32)
        out[y1:y2, x1:x2] = to_uint8(alpha * crop.astype(np.float32) + (1 - alpha) * under)
    return outs
