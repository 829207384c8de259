"""Segmenters for anything that moves: background subtraction, and ``auto`` (people or motion).

``MotionSegmenter`` runs OpenCV's MOG2 (or KNN) background subtractor on a downscaled
copy of each frame (the longer side at most ``MotionConfig.width`` pixels: about 1 ms per
640x480 frame), drops the pixels the subtractor labels as shadow (a darker copy of the
background, value 127), cleans the mask with an opening and a closing, drops connected
regions smaller than ``min_area`` of the frame, grows the rest by ``grow`` pixels and
scales it back up. It is stateful: feed frames in order, one segmenter per stream.

``AutoSegmenter`` combines a people segmenter with motion: people masks where people are
(the person's outline is sharper than its motion blob, and a person who stands still stays
foreground), motion regions elsewhere (cars, bikes, anything that moves). A motion region
that touches a person is taken as part of that person (their shadow or motion halo) and
left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dynbg.segmenters import ForegroundSegmenter, SegmenterError

SUBTRACTORS = ("mog2", "knn")
SHADOW = 127  # OpenCV's label for shadow pixels (foreground is 255)


@dataclass(frozen=True)
class MotionConfig:
    """Motion segmenter options.

    method: "mog2" or "knn" (OpenCV background subtractors). history: frames the
    background model remembers (an object that stops becomes background after about this
    many frames). var_threshold: MOG2's squared Mahalanobis distance (KNN: squared
    distance) above which a pixel is foreground. shadows: detect shadows and leave them
    out. width: the subtractor runs on a copy whose longer side is at most this many
    pixels. opening, closing: structuring element sides (pixels at the working size).
    min_area: connected regions smaller than this fraction of the frame are dropped.
    grow: pixels (at full size) the mask is dilated by at the end (motion blur and the
    edges the model misses).
    """

    # the background subtractor
    method: str = "mog2"
    history: int = 300
    var_threshold: float = 16.0
    shadows: bool = True
    width: int = 320
    # cleaning its mask
    opening: int = 3
    closing: int = 7
    grow: int = 6
    min_area: float = 0.0005

    def __post_init__(self) -> None:
        if self.method not in SUBTRACTORS:
            raise ValueError(f"unknown motion method {self.method!r}: choose "
                             f"{' or '.join(SUBTRACTORS)}")
        if self.history < 1 or self.width < 16 or self.var_threshold <= 0:
            raise ValueError("motion history must be >= 1 frame, width >= 16 px and "
                             "var_threshold > 0")
        if min(self.opening, self.closing, self.grow) < 0 or not 0 <= self.min_area < 1:
            raise ValueError("motion opening, closing and grow must be >= 0, min_area in [0, 1)")


class MotionSegmenter(ForegroundSegmenter):
    """Background subtraction (MOG2/KNN) with shadow removal and morphology; stateful."""

    def __init__(self, config: MotionConfig = MotionConfig()) -> None:
        self.name = "motion"
        self.config = config
        self._model = None
        self._size: tuple[int, int] | None = None

    def reset(self) -> None:
        """Forget the background model (the next frame starts a new one)."""
        self._model, self._size = None, None

    def _new_model(self):
        c = self.config
        if c.method == "knn":
            return cv2.createBackgroundSubtractorKNN(history=c.history,
                                                     dist2Threshold=4 * c.var_threshold * 25,
                                                     detectShadows=c.shadows)
        return cv2.createBackgroundSubtractorMOG2(history=c.history,
                                                  varThreshold=c.var_threshold,
                                                  detectShadows=c.shadows)

    def _predict(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        first = self._model is None or self._size != (h, w)
        if first:
            self._model, self._size = self._new_model(), (h, w)
        c = self.config
        s = min(1.0, c.width / max(h, w))
        small = rgb if s == 1.0 else cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))),
                                                interpolation=cv2.INTER_AREA)
        raw = self._model.apply(small)
        if first:  # the model has seen one frame: nothing can have moved yet
            return np.zeros((h, w), np.float32)
        fg = (raw > SHADOW).astype(np.uint8)
        if c.opening > 1:
            fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((c.opening, c.opening), np.uint8))
        if c.closing > 1:
            fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE,
                                  cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (c.closing,) * 2))
        fg = drop_small(fg, c.min_area)
        g = int(round(c.grow * s))
        if g > 0:
            fg = cv2.dilate(fg, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1,) * 2))
        if s != 1.0:
            fg = cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST)
        return fg.astype(np.float32)

    def close(self) -> None:
        self.reset()


def drop_small(mask: np.ndarray, min_area: float) -> np.ndarray:
    """``mask`` (H x W uint8 0/1) without connected regions under ``min_area`` of the frame."""
    if min_area <= 0 or not mask.any():
        return mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area * mask.size
    keep[0] = False
    return keep[labels].astype(np.uint8)


class AutoSegmenter(ForegroundSegmenter):
    """People masks where people are, motion regions elsewhere (see the module docstring).

    people: a people segmenter (e.g. selfie); motion: a MotionSegmenter. ``person_min``:
    a people mask covering less than this fraction of the frame counts as no person.
    """

    def __init__(self, people: ForegroundSegmenter, motion: MotionSegmenter,
                 person_min: float = 0.002, touch: int = 8) -> None:
        self.name = "auto"
        self.people, self.motion = people, motion
        self.person_min, self.touch = person_min, touch

    def reset(self) -> None:
        """Forget the motion model."""
        self.motion.reset()

    def _predict(self, rgb: np.ndarray) -> np.ndarray:
        person = self.people.mask(rgb)
        moving = (self.motion.mask(rgb) >= 0.5).astype(np.uint8)
        body = person >= 0.5
        if body.mean() < self.person_min:
            return moving.astype(np.float32)
        if moving.any():
            near = cv2.dilate(body.astype(np.uint8),
                              np.ones((2 * self.touch + 1,) * 2, np.uint8)) > 0
            count, labels = cv2.connectedComponents(moving, connectivity=8)
            touching = np.unique(labels[near & (moving > 0)])
            moving[np.isin(labels, touching[touching > 0])] = 0
        return np.maximum(person, moving.astype(np.float32))

    def close(self) -> None:
        self.people.close()
        self.motion.close()


def check_motion_name(name: str) -> None:
    """Refuse a motion segmenter name with options (only ``motion`` and ``motion:knn``)."""
    if name not in ("motion", "motion:mog2", "motion:knn"):
        raise SegmenterError(f"unknown motion segmenter {name!r}: use motion, motion:mog2 or "
                             "motion:knn")
