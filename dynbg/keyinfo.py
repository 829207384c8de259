"""Key-information extraction (paper II.C/II.D) and paste-back at the receiver.

From a binary foreground mask: the bounding box with a margin, the crop X_E (scaled
down when it exceeds a pixel budget, the paper's resolution check), the record the
receiver needs to put it back, and the crop's mask pooled onto the JSCC latent grid.
Paste-back composites a decoded crop into a background with a feathered alpha so the
seam does not show; inside the foreground mask the alpha is exactly 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from dynbg.image import FrameError, to_rgb


@dataclass(frozen=True)
class CropConfig:
    """Crop options.

    margin: added on each side of the mask's bounding box, as a fraction of the box's
    larger side, but at least ``min_margin`` pixels. align: the crop's width and height
    (before and after scaling) are made multiples of this where the frame allows it
    (4 = the JSCC latent grid). max_pixels: resolution check; a crop with more pixels is
    scaled down to fit (None = never). grid: pooling factor of the returned latent mask.
    """

    margin: float = 0.08
    min_margin: int = 8
    align: int = 4
    max_pixels: int | None = None
    grid: int = 4


@dataclass(frozen=True)
class CropRecord:
    """Where a crop came from: box (x1, y1, x2, y2) in frame pixels, x2/y2 exclusive;
    frame size; the size the crop was sent at (width, height) and its scale
    (sent width / box width, 1.0 when not scaled)."""

    x1: int
    y1: int
    x2: int
    y2: int
    frame_width: int
    frame_height: int
    sent_width: int
    sent_height: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x1, y1, x2, y2) in frame pixels."""
        return (self.x1, self.y1, self.x2, self.y2)

    @property
    def scale(self) -> float:
        """Sent width over box width (1.0 = not scaled)."""
        return self.sent_width / (self.x2 - self.x1)


@dataclass(frozen=True)
class KeyInfo:
    """An extracted crop: H' x W' x 3 uint8 RGB, its record, its binary mask (H' x W' bool)
    and that mask max-pooled onto the latent grid (ceil(H'/g) x ceil(W'/g) bool)."""

    crop: np.ndarray
    record: CropRecord
    mask: np.ndarray
    grid_mask: np.ndarray


def bounding_box(mask: np.ndarray, config: CropConfig = CropConfig()
                 ) -> tuple[int, int, int, int] | None:
    """Box (x1, y1, x2, y2), exclusive ends, around mask>0 plus margin; None if mask is empty.

    mask: H x W (bool or numeric). The box is clipped to the frame and, where the frame
    allows, grown so width and height are multiples of ``config.align``.
    """
    m = np.asarray(mask) > 0
    if m.ndim != 2:
        raise FrameError(f"mask shape {m.shape} is not H x W")
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    h, w = m.shape
    y1, y2, x1, x2 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    pad = max(config.min_margin, int(math.ceil(config.margin * max(y2 - y1, x2 - x1))))
    x1, x2 = _grow(x1 - pad, x2 + pad, w, config.align)
    y1, y2 = _grow(y1 - pad, y2 + pad, h, config.align)
    return int(x1), int(y1), int(x2), int(y2)


def _grow(lo: int, hi: int, size: int, align: int) -> tuple[int, int]:
    """Clip [lo, hi) to [0, size), then grow it to a multiple of ``align`` if it fits."""
    lo, hi = max(lo, 0), min(hi, size)
    target = hi - lo + (-(hi - lo) % align)
    if target <= size:
        hi = min(lo + target, size)
        lo = hi - target
    return lo, hi


def sent_size(width: int, height: int, config: CropConfig = CropConfig()) -> tuple[int, int]:
    """(width, height) a width x height crop is sent at under ``config.max_pixels``."""
    if config.max_pixels is None or width * height <= config.max_pixels:
        return width, height
    s = math.sqrt(config.max_pixels / (width * height))
    a = config.align
    return max(a, int(width * s) // a * a), max(a, int(height * s) // a * a)


def pool_mask(mask: np.ndarray, factor: int) -> np.ndarray:
    """Max-pool an H x W bool mask by ``factor`` -> ceil(H/f) x ceil(W/f) bool."""
    h, w = mask.shape
    ph, pw = -h % factor, -w % factor
    m = np.pad(np.asarray(mask, bool), ((0, ph), (0, pw)))
    return m.reshape((h + ph) // factor, factor, (w + pw) // factor, factor).any(axis=(1, 3))


def extract(frame: np.ndarray, mask: np.ndarray, config: CropConfig = CropConfig()
            ) -> KeyInfo | None:
    """Key-information crop of ``frame`` around binary ``mask`` (H x W); None if mask is empty.

    frame: H x W (x 1/3/4) uint8. The crop is H' x W' x 3 uint8 RGB, downscaled (INTER_AREA)
    when the resolution check applies.
    """
    rgb = to_rgb(frame)
    m = np.asarray(mask) > 0
    if m.shape != rgb.shape[:2]:
        raise FrameError(f"mask shape {m.shape} does not match frame {rgb.shape[:2]}")
    box = bounding_box(m, config)
    if box is None:
        return None
    x1, y1, x2, y2 = box
    crop, crop_mask = rgb[y1:y2, x1:x2], m[y1:y2, x1:x2]
    sw, sh = sent_size(x2 - x1, y2 - y1, config)
    if (sw, sh) != (x2 - x1, y2 - y1):
        crop = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA)
        crop_mask = cv2.resize(crop_mask.astype(np.uint8), (sw, sh),
                               interpolation=cv2.INTER_NEAREST) > 0
    record = CropRecord(x1, y1, x2, y2, rgb.shape[1], rgb.shape[0], sw, sh)
    return KeyInfo(np.ascontiguousarray(crop), record, crop_mask, pool_mask(crop_mask, config.grid))


def _edge_ramp(n: int, fade_lo: bool, fade_hi: bool, feather: int) -> np.ndarray:
    """Length-n alpha ramp: 1 inside, falling to ~0 over ``feather`` px at faded ends."""
    i = np.arange(n, dtype=np.float32)
    r = np.ones(n, np.float32)
    if fade_lo:
        r = np.minimum(r, (i + 0.5) / feather)
    if fade_hi:
        r = np.minimum(r, (n - i - 0.5) / feather)
    return np.clip(r, 0.0, 1.0)


def feather_alpha(record: CropRecord, feather: int, mask: np.ndarray | None = None
                  ) -> np.ndarray:
    """Alpha (box height x box width float32 in [0, 1]) for pasting a crop back.

    Without ``mask``: 1 inside, fading to 0 over ``feather`` px at box edges that are not
    frame borders. With ``mask`` (crop-size or latent-grid bool, resized to the box):
    1 on the mask, fading to 0 over ``feather`` px away from it (and at the box edges).
    """
    bw, bh = record.x2 - record.x1, record.y2 - record.y1
    if feather <= 0:
        alpha = np.ones((bh, bw), np.float32)
    else:
        rx = _edge_ramp(bw, record.x1 > 0, record.x2 < record.frame_width, feather)
        ry = _edge_ramp(bh, record.y1 > 0, record.y2 < record.frame_height, feather)
        alpha = np.minimum.outer(ry, rx)
    if mask is None:
        return alpha
    m = cv2.resize(np.asarray(mask, np.uint8), (bw, bh), interpolation=cv2.INTER_NEAREST)
    if feather <= 0:
        return m.astype(np.float32)
    dist = cv2.distanceTransform((m == 0).astype(np.uint8), cv2.DIST_L2, 3)
    near = np.clip(1.0 - dist / feather, 0.0, 1.0)
    return np.where(m > 0, 1.0, np.minimum(near, alpha)).astype(np.float32)


def fit_crop(background: np.ndarray, crop: np.ndarray, record: CropRecord
             ) -> tuple[np.ndarray, np.ndarray]:
    """(background as H x W x 3 RGB, crop resized to ``record``'s box as bh x bw x 3 RGB);
    FrameError when the background is not the record's frame size."""
    bg = to_rgb(background)
    if bg.shape[:2] != (record.frame_height, record.frame_width):
        raise FrameError(f"background is {bg.shape[1]}x{bg.shape[0]}, the crop record needs "
                         f"{record.frame_width}x{record.frame_height}: resize it first")
    c = to_rgb(crop, min_side=1)
    bw, bh = record.x2 - record.x1, record.y2 - record.y1
    if c.shape[:2] != (bh, bw):
        c = cv2.resize(c, (bw, bh), interpolation=cv2.INTER_LINEAR)
    return bg, c


def paste_back(background: np.ndarray, crop: np.ndarray, record: CropRecord,
               feather: int = 6, mask: np.ndarray | None = None) -> np.ndarray:
    """Composite ``crop`` into a copy of ``background`` at ``record``'s box.

    background: frame_height x frame_width (x 1/3/4) uint8; crop: any size H' x W' x 3
    uint8 (resized to the box when it was scaled or decoded at another size). Returns
    H x W x 3 uint8 RGB. With a lossless, unscaled crop the pixels where alpha is 1
    (inside ``mask``, or everything ``feather`` px away from inner box edges) equal the
    original frame exactly.
    """
    bg, c = fit_crop(background, crop, record)
    alpha = feather_alpha(record, feather, mask)[:, :, None]
    out = bg.copy()
    region = out[record.y1:record.y2, record.x1:record.x2].astype(np.float32)
    blend = alpha * c.astype(np.float32) + (1.0 - alpha) * region
    out[record.y1:record.y2, record.x1:record.x2] = np.clip(blend + 0.5, 0, 255).astype(np.uint8)
    return out
