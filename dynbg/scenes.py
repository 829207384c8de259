"""Streaming scene segmentation by ORB similarity (paper III.C).

Each segment keeps its first frame as key frame. A frame starts a new segment (a cut)
when its ORB similarity to the key frame falls below ``threshold`` and, to tell a hard
cut from a gradual change (camera pan, a car passing close), its similarity to the
previous frame also falls below ``abrupt_threshold``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from dynbg.orb import OrbConfig, OrbDescriber, similarity


@dataclass(frozen=True)
class SceneConfig:
    """Scene-cut options: similarities are matched pairs over the smaller descriptor count.

    threshold: similarity to the key frame below which a frame may be a cut.
    abrupt_threshold: similarity to the previous frame below which it is one.
    min_length: frames a segment lasts at least (no cut earlier).
    """

    orb: OrbConfig = field(default_factory=OrbConfig)
    threshold: float = 0.15
    abrupt_threshold: float = 0.2
    min_length: int = 5


@dataclass(frozen=True)
class SceneUpdate:
    """Result for one frame: its segment id (0, 1, ...), whether it starts a new segment
    (the first frame does not count as a cut), and its similarities to the key frame and
    the previous frame."""

    segment: int
    cut: bool
    key_similarity: float
    previous_similarity: float


@dataclass(frozen=True)
class Segment:
    """Frames ``start`` .. ``end`` (inclusive) of one scene."""

    start: int
    end: int


class SceneSegmenter:
    """Feed frames in order with ``update``; cheap enough for live video (one ORB pass)."""

    def __init__(self, config: SceneConfig = SceneConfig()) -> None:
        self.config = config
        self._orb = OrbDescriber(config.orb)
        self._key: np.ndarray | None = None
        self._previous: np.ndarray | None = None
        self.segment = -1
        self._length = 0

    def update(self, frame: np.ndarray, exclude: np.ndarray | None = None) -> SceneUpdate:
        """Classify the next frame (H x W (x 1/3/4) uint8); ``exclude``: H x W foreground."""
        desc = self._orb.describe(frame, exclude)
        t = self.config.orb.hamming_threshold
        if self._key is None:
            self._key, self._previous, self.segment, self._length = desc, desc, 0, 1
            return SceneUpdate(0, False, 1.0, 1.0)
        key_sim = similarity(self._key, desc, t)
        prev_sim = similarity(self._previous, desc, t)
        cut = (self._length >= self.config.min_length and key_sim < self.config.threshold
               and prev_sim < self.config.abrupt_threshold)
        if cut:
            self._key, self.segment, self._length = desc, self.segment + 1, 0
        self._previous = desc
        self._length += 1
        return SceneUpdate(self.segment, cut, key_sim, prev_sim)


def segment_frames(frames: Iterable[np.ndarray], config: SceneConfig = SceneConfig()
                   ) -> list[Segment]:
    """Split a sequence of frames into segments (frame indices counted from 0)."""
    seg = SceneSegmenter(config)
    segments: list[Segment] = []
    start, n = 0, 0
    for i, frame in enumerate(frames):
        if seg.update(frame).cut:
            segments.append(Segment(start, i - 1))
            start = i
        n = i + 1
    if n:
        segments.append(Segment(start, n - 1))
    return segments
