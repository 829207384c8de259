"""Seamless paste-back: a decoded crop into the receiver's background without a visible box.

Feathering alone hides a seam only when both sides agree in level; a decoded crop differs
from the background by the codec's low-frequency error (colour shifts, blur) and by
whatever changed in the scene. ``blend_paste`` therefore

1. measures the crop's level error against the background on the box's margin (the
   sender grows every box by a margin, so its edge ring shows background), spread over
   the box as a smooth membrane (normalised Gaussian convolution);
2. finds the crop's foreground: the sender's mask when one came with the crop, otherwise
   the pixels whose smoothed, level-corrected difference from the background exceeds
   ``detect`` levels;
3. measures the level error again on every pixel that shows background and subtracts that
   membrane from the whole crop, so the crop meets the background at the background's
   level (a cheap stand-in for Poisson cloning);
4. composites with an alpha that is 1 on the foreground, falls to 0 over ``feather``
   pixels away from it, and is 0 at the box edges that are not frame borders: where the
   crop shows background the receiver keeps its own (cleaner) background.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dynbg.keyinfo import CropRecord, feather_alpha, fit_crop

RING = 4  # pixels of the box's margin that measure the crop's level error first
MEMBRANE_PX = 3.0  # the membrane's sigma in pixels of the grid it is computed on


@dataclass(frozen=True)
class BlendConfig:
    """Paste-back options.

    feather: pixels over which alpha falls from the foreground (and box edges) to 0.
    detect: without a sender mask, a crop pixel is foreground where its Gaussian-smoothed
    (sigma 2 px) difference from the background exceeds this many levels in any channel;
    None: the whole box is foreground (only the offset correction and box feathering).
    grow: pixels the detected foreground is dilated by (edges the threshold misses).
    membrane: Gaussian sigma of the offset membrane as a fraction of the box's shorter
    side (at least 6 px).
    """

    feather: int = 6
    detect: float | None = 12.0
    grow: int = 4
    membrane: float = 0.125

    def __post_init__(self) -> None:
        if self.feather < 0 or self.grow < 0 or not self.membrane > 0:
            raise ValueError("feather and grow must be >= 0 pixels, membrane > 0")
        if self.detect is not None and not self.detect > 0:
            raise ValueError(f"detect must be > 0 levels or None, got {self.detect}")


def edge_ring(record: CropRecord, width: int) -> np.ndarray:
    """Box-size bool mask of the pixels within ``width`` px of the box edges that are not
    frame borders (the sender's crop margin: background by construction)."""
    bw, bh = record.x2 - record.x1, record.y2 - record.y1
    ring = np.zeros((bh, bw), bool)
    if record.x1 > 0:
        ring[:, :width] = True
    if record.x2 < record.frame_width:
        ring[:, bw - width:] = True
    if record.y1 > 0:
        ring[:width] = True
    if record.y2 < record.frame_height:
        ring[bh - width:] = True
    return ring


def offset_membrane(diff: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """The low-frequency part of ``diff`` (h x w x 3 float32) where ``weight`` (h x w bool)
    is True, spread over the rest by normalised Gaussian convolution (width ``sigma`` px,
    four times wider deep inside unweighted areas); zeros without any weighted pixel.

    The membrane holds nothing finer than ``sigma``, so it is computed on the box
    area-averaged by up to ``sigma / MEMBRANE_PX`` and resized back: a 400 px box at full
    scale needs Gaussian kernels of ~1,200 taps (about 0.6 s a frame on one core)."""
    w = weight.astype(np.float32)
    if not w.any():
        return np.zeros_like(diff)
    h, wd = w.shape
    factor = max(1.0, sigma / MEMBRANE_PX)
    small = (max(1, round(wd / factor)), max(1, round(h / factor)))
    ws = cv2.resize(w, small, interpolation=cv2.INTER_AREA)
    num_s = cv2.resize(diff * w[:, :, None], small, interpolation=cv2.INTER_AREA)
    scale = small[0] / wd  # the same along both axes up to rounding
    out = np.zeros_like(num_s)
    share = np.ones(ws.shape, np.float32)
    for s in (sigma, 4 * sigma):
        den = cv2.GaussianBlur(ws, (0, 0), s * scale)
        num = cv2.GaussianBlur(num_s, (0, 0), s * scale)
        part = share if s > sigma else np.clip(den / 0.05, 0.0, 1.0)
        out += (part * (1.0 / np.maximum(den, 1e-6)))[:, :, None] * num
        share = share - part
    if small != (wd, h):
        out = cv2.resize(out, (wd, h), interpolation=cv2.INTER_LINEAR)
    return out.reshape(diff.shape)


def crop_foreground(diff: np.ndarray, config: BlendConfig) -> np.ndarray:
    """Where the level-corrected difference ``diff`` (h x w x 3 float32, crop minus
    background) shows something the background does not: h x w bool."""
    smooth = cv2.GaussianBlur(diff, (0, 0), 2.0)
    fg = (np.abs(smooth).max(axis=2) > config.detect).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    if config.grow > 0:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * config.grow + 1,) * 2)
        fg = cv2.dilate(fg, disc)
    return fg > 0


def blend_paste(background: np.ndarray, crop: np.ndarray, record: CropRecord,
                mask: np.ndarray | None = None,
                config: BlendConfig = BlendConfig()) -> np.ndarray:
    """Composite ``crop`` into a copy of ``background`` at ``record``'s box (see module).

    background: frame_height x frame_width (x 1/3/4) uint8; crop: H' x W' x 3 uint8 (resized
    to the box); mask: the sender's foreground mask (any size, resized to the box) or None.
    Returns H x W x 3 uint8 RGB.
    """
    bg, c = fit_crop(background, crop, record)
    bw, bh = record.x2 - record.x1, record.y2 - record.y1
    cf = c.astype(np.float32)
    region = bg[record.y1:record.y2, record.x1:record.x2].astype(np.float32)
    diff = cf - region
    sigma = max(6.0, config.membrane * min(bw, bh))
    # first guess of the crop's level error: from its margin, which shows background
    ring = edge_ring(record, min(RING, bw // 4, bh // 4))
    if ring.any():
        dev = np.abs(diff - np.median(diff[ring], axis=0)).max(axis=2)
        ring &= dev <= max(config.detect or 12.0, 3 * 1.4826 * float(np.median(dev[ring])))
    level = offset_membrane(diff, ring, sigma)
    if mask is not None:
        fg = cv2.resize(np.asarray(mask, np.uint8), (bw, bh),
                        interpolation=cv2.INTER_NEAREST) > 0
    elif config.detect is None:
        fg = np.ones((bh, bw), bool)
    else:
        fg = crop_foreground(diff - level, config)
    if not fg.all():  # every pixel that shows background measures the level error
        level = offset_membrane(diff, ~fg, sigma)
    cf -= level
    alpha = feather_alpha(record, config.feather, fg)[:, :, None]
    out = bg.copy()
    blend = alpha * cf + (1.0 - alpha) * region
    out[record.y1:record.y2, record.x1:record.x2] = np.clip(blend + 0.5, 0, 255).astype(np.uint8)
    return out
