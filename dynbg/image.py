"""Frame checks and conversion to the project's RGB uint8 layout."""

from __future__ import annotations

import numpy as np

MIN_SIDE = 8  # smallest frame side (pixels) the segmenters and ORB accept


class FrameError(ValueError):
    """A frame has an unusable shape, type or size (message is one line)."""


def to_rgb(frame: np.ndarray, min_side: int = MIN_SIDE) -> np.ndarray:
    """Return ``frame`` as H x W x 3 uint8 RGB.

    frame: H x W (gray), H x W x 1, H x W x 3 (RGB) or H x W x 4 (RGBA, alpha dropped),
    uint8. Raises FrameError for other shapes or types and for sides below ``min_side``.
    """
    a = np.asarray(frame)
    if a.dtype != np.uint8:
        raise FrameError(f"frame dtype is {a.dtype}, expected uint8 (0..255)")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim != 3 or a.shape[2] not in (3, 4):
        raise FrameError(f"frame shape {a.shape} is not H x W, H x W x 1, x 3 or x 4")
    if min(a.shape[:2]) < min_side:
        raise FrameError(f"frame of {a.shape[1]}x{a.shape[0]} pixels is too small: "
                         f"each side must be at least {min_side}")
    return np.ascontiguousarray(a[:, :, :3])
