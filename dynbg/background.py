"""Dynamic background of a segment (paper III.B) and its online variant for live video (III.D).

Per frame, a foreground mask (any segmenter), grown by ``dilate`` pixels, marks where the
background is hidden; elsewhere the frame is a sample of the background. The background
image is the per-pixel median of the visible samples; pixels never visible form the hole
mask and are filled with OpenCV inpainting (standing in for the paper's generative
completion). The AND of the per-frame background masks (pixels visible in every frame) is
reported too. Samples can be brought to one exposure first, since cameras change their
exposure when a dark or bright person walks in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from dynbg.image import FrameError, to_rgb


@dataclass(frozen=True)
class BackgroundConfig:
    """Options.

    threshold: soft-mask value at or above which a pixel is foreground.
    dilate: pixels the foreground grows by before the rest counts as background
    (segmenter masks miss hair, shadows and motion blur at the edges).
    samples: frames the online builder keeps for the median (a ring, oldest replaced).
    every: the online builder stores every n-th frame (it still tracks which pixels
    were seen on every frame); with ``samples`` it sets the memory, 120 frames by default
    (4 s at 30 fps): a person who stands still longer than that hides the background.
    inpaint_radius: OpenCV inpainting radius (pixels) for never-seen pixels.
    exposure: undo automatic exposure: each stored frame is scaled per channel to the
    first stored frame's exposure (see ``exposure_gain``), so the median does not mix
    exposures; the built background is at the first stored frame's exposure.
    """

    threshold: float = 0.5
    dilate: int = 15
    samples: int = 15
    every: int = 8
    inpaint_radius: int = 5
    exposure: bool = True


@dataclass(frozen=True)
class Background:
    """A built background.

    image: H x W x 3 uint8 RGB, holes inpainted. hole: H x W bool, never seen (inpainted).
    always_visible: H x W bool, the AND of every frame's background mask.
    frames: frames that went in.
    """

    image: np.ndarray
    hole: np.ndarray
    always_visible: np.ndarray
    frames: int

    @property
    def unseen_fraction(self) -> float:
        """Fraction of pixels never seen (filled by inpainting), in [0, 1]."""
        return float(self.hole.mean())


def visible_mask(foreground: np.ndarray, config: BackgroundConfig = BackgroundConfig()
                 ) -> np.ndarray:
    """Background mask (H x W bool, True = background visible) from a soft or binary
    foreground mask (H x W), after growing the foreground by ``config.dilate`` pixels."""
    fg = (np.asarray(foreground) >= config.threshold).astype(np.uint8)
    if config.dilate > 0 and fg.any():
        k = 2 * config.dilate + 1
        fg = cv2.dilate(fg, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    return fg == 0


def _sort_slices(a: np.ndarray) -> None:
    """Sort ``a`` (K x ...) along axis 0 in place with an odd-even transposition network:
    K rounds of whole-slice min/max, several times faster than np.sort for small K."""
    k = a.shape[0]
    tmp = np.empty_like(a[0])
    for r in range(k):
        for i in range(r % 2, k - 1, 2):
            np.minimum(a[i], a[i + 1], out=tmp)
            np.maximum(a[i], a[i + 1], out=a[i + 1])
            a[i] = tmp


def masked_median(samples: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel median of the valid samples.

    samples: K x H x W x 3 uint8; valid: K x H x W bool. Returns (median H x W x 3 uint8, 0
    where no sample is valid; count H x W int). The middle two are averaged for even counts.
    """
    k = samples.shape[0]
    counts = valid.sum(axis=0)
    # Invalid samples become 255, the largest value: after sorting, the first ``count``
    # entries of a pixel are exactly its sorted valid samples (a valid 255 equals the filler).
    s = np.where(valid[..., None], samples, np.uint8(255))
    _sort_slices(s)
    lo = np.clip((counts - 1) // 2, 0, k - 1)[None, :, :, None]
    hi = np.clip(counts // 2, 0, k - 1)[None, :, :, None]
    a = np.take_along_axis(s, np.broadcast_to(lo, (1,) + s.shape[1:]), axis=0)[0]
    b = np.take_along_axis(s, np.broadcast_to(hi, (1,) + s.shape[1:]), axis=0)[0]
    med = (a.astype(np.int16) + b + 1) // 2
    med[counts == 0] = 0
    return med.astype(np.uint8), counts


def exposure_gain(frame: np.ndarray, reference: np.ndarray, both: np.ndarray,
                  stride: int = 4) -> np.ndarray:
    """Per-channel gain (3 float32) that maps ``frame``'s exposure onto ``reference``'s.

    frame, reference: H x W x 3 uint8; both: H x W bool, background in both. The gain is
    the median of reference / frame over every ``stride``-th pixel of ``both`` whose values
    are not clipped (9..246); 1.0 when fewer than 500 such pixels exist.
    """
    sel = both[::stride, ::stride]
    f = frame[::stride, ::stride][sel].astype(np.float32)
    r = reference[::stride, ::stride][sel].astype(np.float32)
    ok = ((f > 8) & (f < 247) & (r > 8) & (r < 247)).all(axis=1)
    if ok.sum() < 500:
        return np.ones(3, np.float32)
    return np.median(r[ok] / f[ok], axis=0).astype(np.float32)


def fill_holes(image: np.ndarray, hole: np.ndarray, radius: int) -> np.ndarray:
    """Inpaint ``hole`` (H x W bool) of ``image`` (H x W x 3 uint8); all-hole gives gray."""
    if not hole.any():
        return image
    if hole.all():
        return np.full_like(image, 128)
    return cv2.inpaint(image, hole.astype(np.uint8), radius, cv2.INPAINT_TELEA)


class OnlineBackground:
    """Background that improves as live frames arrive; ``background()`` works at any time.

    Keeps the last ``config.samples`` stored frames with their background masks (a ring);
    a pixel's value is the median of its visible samples in the ring, or, when the ring
    has none, the last visible value of that pixel in a frame that left the ring. So it
    follows slow changes, and per-frame work is a few whole-frame operations (no per-pixel
    loops). The median is computed when queried and cached until the next update.
    """

    def __init__(self, config: BackgroundConfig = BackgroundConfig()) -> None:
        self.config = config
        self.frames = 0  # frames fed
        self._stored = 0  # frames stored in the ring so far
        self._ring: np.ndarray | None = None  # K x H x W x 3 uint8
        self._ring_vis: np.ndarray | None = None  # K x H x W uint8, 1 = background visible
        self._old: np.ndarray | None = None  # H x W x 3, last visible value evicted from the ring
        self._old_seen: np.ndarray | None = None  # H x W uint8
        self._seen: np.ndarray | None = None  # H x W bool, visible on any fed frame
        self._always: np.ndarray | None = None  # H x W bool, visible on every fed frame
        self._reference: tuple[np.ndarray, np.ndarray] | None = None  # exposure reference
        self._cache: Background | None = None

    def update(self, frame: np.ndarray, foreground: np.ndarray) -> None:
        """Add a frame (H x W (x 1/3/4) uint8) and its foreground mask (H x W, soft or bool)."""
        rgb = to_rgb(frame)
        fg = np.asarray(foreground)
        if fg.shape != rgb.shape[:2]:
            raise FrameError(f"mask shape {fg.shape} does not match frame {rgb.shape[:2]}")
        if self._seen is None:
            h, w = rgb.shape[:2]
            k = self.config.samples
            self._ring = np.zeros((k, h, w, 3), np.uint8)
            self._ring_vis = np.zeros((k, h, w), np.uint8)
            self._old = np.zeros((h, w, 3), np.uint8)
            self._old_seen = np.zeros((h, w), np.uint8)
            self._seen = np.zeros((h, w), bool)
            self._always = np.ones((h, w), bool)
        elif rgb.shape[:2] != self._seen.shape:
            raise FrameError(f"frame is {rgb.shape[1]}x{rgb.shape[0]}, this background is "
                             f"{self._seen.shape[1]}x{self._seen.shape[0]}: start a new one")
        vis = visible_mask(fg, self.config)
        self._seen |= vis
        self._always &= vis
        if self.frames % self.config.every == 0:
            self._store(rgb, vis)
        self.frames += 1
        self._cache = None

    def _store(self, rgb: np.ndarray, vis: np.ndarray) -> None:
        if self.config.exposure:
            if self._reference is None:
                self._reference = (rgb.copy(), vis.copy())
            else:
                ref, ref_vis = self._reference
                gain = exposure_gain(rgb, ref, vis & ref_vis)
                rgb = cv2.multiply(rgb, (float(gain[0]), float(gain[1]), float(gain[2]), 0.0))
        slot = self._stored % self.config.samples
        if self._stored >= self.config.samples:  # evict: keep its visible pixels as fallback
            cv2.copyTo(self._ring[slot], self._ring_vis[slot], self._old)
            self._old_seen |= self._ring_vis[slot]
        self._ring[slot] = rgb
        self._ring_vis[slot] = vis
        self._stored += 1

    @property
    def unseen_fraction(self) -> float:
        """Fraction of pixels not yet seen as background on any frame (1.0 before the first)."""
        return 1.0 if self._seen is None else float(1.0 - self._seen.mean())

    def background(self) -> Background:
        """The current background (medians of stored samples, unseen pixels inpainted).

        Its hole mask also counts pixels seen only on frames that were not stored (``every``).
        """
        if self._seen is None:
            raise ValueError("no frame added yet: call update() first")
        if self._cache is None:
            n = min(self._stored, self.config.samples)
            image, counts = masked_median(self._ring[:n], self._ring_vis[:n] > 0)
            from_old = (counts == 0) & (self._old_seen > 0)
            image[from_old] = self._old[from_old]
            hole = (counts == 0) & ~from_old
            image = fill_holes(image, hole, self.config.inpaint_radius)
            self._cache = Background(image, hole, self._always.copy(), self.frames)
        return self._cache


def build_background(frames: Iterable[np.ndarray], foregrounds: Iterable[np.ndarray],
                     config: BackgroundConfig = BackgroundConfig()) -> Background:
    """Offline background of a segment from its frames and their foreground masks.

    frames: H x W (x 1/3/4) uint8 each; foregrounds: H x W soft or binary masks. Every frame
    keeps its samples (unlike the online builder), so pass an evenly spaced subset of a long
    segment. Raises ValueError for no frames.
    """
    pairs = list(zip(frames, foregrounds, strict=True))
    if not pairs:
        raise ValueError("no frames to build a background from")
    online = OnlineBackground(dataclasses.replace(config, samples=len(pairs), every=1))
    for frame, fg in pairs:
        online.update(frame, fg)
    return online.background()


def changed_mask(image: np.ndarray, background: np.ndarray, threshold: int = 25,
                 min_area: float = 0.001, opening: int = 5) -> np.ndarray:
    """Where ``image`` differs from ``background`` (both H x W x 3 uint8): H x W bool.

    A pixel changed when any channel differs by more than ``threshold`` levels. An
    opening with an ``opening`` x ``opening`` square removes noise and thin slivers (the
    seams of a segmentation), and connected regions smaller than ``min_area`` of the frame
    are left out.
    """
    if image.shape != background.shape:
        raise ValueError(f"image {image.shape} and background {background.shape} differ in size")
    # the largest channel difference, with cv2 (numpy's max over the channel axis of a
    # 640 x 480 x 3 uint8 array took 7 of this function's 9 ms)
    channels = cv2.split(cv2.absdiff(image, background))
    largest = channels[0]
    for c in channels[1:]:
        largest = cv2.max(largest, c)
    diff = (largest > threshold).astype(np.uint8)
    diff = cv2.morphologyEx(diff, cv2.MORPH_OPEN, np.ones((opening, opening), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(diff, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area * diff.size
    keep[0] = False  # label 0 is the unchanged rest
    return keep[labels]
