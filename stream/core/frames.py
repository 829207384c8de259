"""The unit that flows through the pipeline: one video frame with its timing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    """One video frame.

    image: H x W x 3 uint8, RGB. index: 0-based position in the source.
    pts: presentation time in seconds from the start of the source.
    captured: wall-clock time (time.time(), seconds) when the frame was read or
    captured; glass-to-glass latency is measured from it.
    """

    image: np.ndarray
    index: int
    pts: float
    captured: float
