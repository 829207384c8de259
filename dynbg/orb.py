"""ORB descriptors with a foreground region masked out, and Hamming-threshold match counts.

One implementation shared by background-library matching (II.B) and scene
segmentation (III.C): N = number of cross-checked nearest-neighbour descriptor pairs
whose Hamming distance is below the threshold T.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dynbg.image import to_rgb

DESCRIPTOR_BYTES = 32  # ORB descriptors are 256 bits


@dataclass(frozen=True)
class OrbConfig:
    """ORB options.

    nfeatures: keypoints per image. hamming_threshold: T, a pair counts when its distance
    (bits, of 256) is below T. max_side: images are scaled down so their longer side is at
    most this many pixels before detection (speed; matching is scale-tolerant).
    exclude_grow: pixels added around an excluded (foreground) region so no descriptor
    patch overlaps it.
    """

    nfeatures: int = 500
    hamming_threshold: int = 50
    max_side: int = 640
    exclude_grow: int = 15


class OrbDescriber:
    """Computes ORB descriptors (N x 32 uint8, N may be 0) of frames; reuse one per thread."""

    def __init__(self, config: OrbConfig = OrbConfig()) -> None:
        self.config = config
        self._orb = cv2.ORB_create(nfeatures=config.nfeatures)

    def describe(self, frame: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """Descriptors of ``frame`` (H x W (x 1/3/4) uint8) outside ``exclude`` (H x W, >0)."""
        rgb = to_rgb(frame)
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        s = min(1.0, self.config.max_side / max(h, w))
        if s < 1.0:
            gray = cv2.resize(gray, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        allowed = None
        if exclude is not None:
            ex = np.asarray(exclude)
            if ex.shape != (h, w):
                raise ValueError(f"exclude mask shape {ex.shape} does not match frame {(h, w)}")
            ex = cv2.resize((ex > 0).astype(np.uint8), gray.shape[::-1],
                            interpolation=cv2.INTER_NEAREST)
            g = max(1, round(self.config.exclude_grow * s))
            ex = cv2.dilate(ex, np.ones((2 * g + 1, 2 * g + 1), np.uint8))
            allowed = np.where(ex > 0, 0, 255).astype(np.uint8)
        _, desc = self._orb.detectAndCompute(gray, allowed)
        if desc is None:
            return np.zeros((0, DESCRIPTOR_BYTES), np.uint8)
        return desc


_MATCHER = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)


def count_matches(a: np.ndarray, b: np.ndarray, threshold: int) -> int:
    """N: cross-checked descriptor pairs of a (N_a x 32) and b (N_b x 32) with distance < T."""
    if len(a) == 0 or len(b) == 0:
        return 0
    return sum(1 for m in _MATCHER.match(a, b) if m.distance < threshold)


def similarity(a: np.ndarray, b: np.ndarray, threshold: int) -> float:
    """Matched pairs over the smaller descriptor count, in [0, 1] (0 when either is empty)."""
    n = min(len(a), len(b))
    return count_matches(a, b, threshold) / n if n else 0.0
