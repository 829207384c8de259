"""Exposure and colour drift: a per-channel gain and offset from a background to a frame.

When the camera's exposure or white balance changes (or a cloud passes), the frame's
background is no longer the background the receiver holds, but usually close to an affine
map of it per colour channel: frame ~ gain * background + offset. The sender estimates
that map on the pixels that show background in both (robust least squares), quantises it
to ``GAIN_BYTES`` bytes of side information, and the receiver applies it to its
background before compositing. A change the map cannot explain (something moved, a light
switched on in one corner) is left to a background refresh.

Quantisation: per channel one byte for log2(gain) in [-1, 1] (gain 0.5..2, steps of
0.54 %) and one byte for the offset in [-64, 63.5] levels (steps of 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

GAIN_BYTES = 6  # 3 log-gain codes, then 3 offset codes
GAIN_BITS = 8 * GAIN_BYTES
_LOG_RANGE = 1.0  # log2(gain) in [-1, 1]
_OFFSET_STEP = 0.5  # levels per offset code; code 128 = 0
_IDENTITY = bytes([128] * 3 + [128] * 3)


@dataclass(frozen=True)
class Gain:
    """frame ~ gain * background + offset, per RGB channel (3 float32 each; offset in levels)."""

    gain: np.ndarray
    offset: np.ndarray

    @staticmethod
    def identity() -> Gain:
        """Gain 1, offset 0."""
        return Gain(np.ones(3, np.float32), np.zeros(3, np.float32))


def _gain_code(g: float) -> int:
    x = np.clip(np.log2(max(g, 1e-6)), -_LOG_RANGE, _LOG_RANGE)
    return int(np.clip(round((x + _LOG_RANGE) / (2 * _LOG_RANGE) * 256), 0, 255))


def encode_gain(g: Gain) -> bytes:
    """The ``GAIN_BYTES`` side-information bytes of ``g`` (clamped to the coded range);
    b"" when it quantises to the identity (nothing to send)."""
    codes = [_gain_code(float(v)) for v in g.gain]
    codes += [int(np.clip(round(float(v) / _OFFSET_STEP) + 128, 0, 255)) for v in g.offset]
    raw = bytes(codes)
    return b"" if raw == _IDENTITY else raw


def decode_gain(raw: bytes) -> Gain:
    """The gain of ``GAIN_BYTES`` side-information bytes (every byte value is valid)."""
    if len(raw) != GAIN_BYTES:
        raise ValueError(f"a gain has {GAIN_BYTES} bytes, got {len(raw)}")
    codes = np.frombuffer(bytes(raw), np.uint8).astype(np.float32)
    gain = np.exp2(codes[:3] / 256 * 2 * _LOG_RANGE - _LOG_RANGE)
    return Gain(gain.astype(np.float32), ((codes[3:] - 128) * _OFFSET_STEP).astype(np.float32))


def apply_gain(image: np.ndarray, g: Gain) -> np.ndarray:
    """``image`` (H x W x 3 uint8) mapped by ``g``, rounded and clipped (H x W x 3 uint8)."""
    lut = np.arange(256, dtype=np.float32)[:, None] * g.gain[None, :] + g.offset[None, :]
    lut = np.clip(lut + 0.5, 0, 255).astype(np.uint8)  # 256 x 3: one table per channel
    out = np.empty_like(image)
    for c in range(3):
        out[..., c] = cv2.LUT(image[..., c], lut[:, c])
    return out


def estimate_gain(background: np.ndarray, frame: np.ndarray, valid: np.ndarray,
                  stride: int = 4, min_pixels: int = 300) -> Gain:
    """Affine map per channel from ``background`` to ``frame`` (both H x W x 3 uint8) over
    ``valid`` (H x W bool: background visible in both), on every ``stride``-th pixel.

    Pixels clipped in either image (<= 4 or >= 251) are left out; two rounds of least
    squares, the second on the pixels whose residual is within 3 robust deviations (at
    least 6 levels) of the first fit, so moving objects the mask missed do not pull it.
    Identity when fewer than ``min_pixels`` pixels are usable.
    """
    sel = valid[::stride, ::stride]
    b = background[::stride, ::stride][sel].astype(np.float32)
    f = frame[::stride, ::stride][sel].astype(np.float32)
    ok = ((b > 4) & (b < 251) & (f > 4) & (f < 251)).all(axis=1)
    b, f = b[ok], f[ok]
    if len(b) < min_pixels:
        return Gain.identity()
    gain, offset = _fit(b, f)
    res = np.abs(f - (b * gain + offset)).max(axis=1)
    keep = res <= max(6.0, 3 * 1.4826 * float(np.median(res)))
    if keep.sum() >= min_pixels:
        gain, offset = _fit(b[keep], f[keep])
    return Gain(gain, offset)


def _fit(b: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel least squares f = gain * b + offset (N x 3 each); a flat channel
    (no spread) gets gain 1 and the mean difference as offset."""
    mb, mf = b.mean(axis=0), f.mean(axis=0)
    var = ((b - mb) ** 2).mean(axis=0)
    cov = ((b - mb) * (f - mf)).mean(axis=0)
    gain = np.where(var > 1.0, cov / np.maximum(var, 1e-6), 1.0)
    gain = np.clip(gain, 2 ** -_LOG_RANGE, 2 ** _LOG_RANGE)
    return gain.astype(np.float32), (mf - gain * mb).astype(np.float32)
