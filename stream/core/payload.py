"""JSCC symbols of one coded image as bytes: the payload of a JSCC background update.

Layout (network byte order): rate level u8 | SNR f32 | coded size (h, w) u16 x 2 |
latent (groups sent, h, w) u16 x 3 | scale f32 | symbol count u32 | symbols as float16
pairs (re, im), little-endian, 4 bytes per complex channel use.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from jscc.codec import Transmission
from stream.core.wire import MAX_SIDE, MAX_SYMBOLS

_HEAD = struct.Struct("!Bf2H3HfI")


class PayloadError(ValueError):
    """A JSCC payload is truncated or holds out-of-range values (one line)."""


@dataclass(frozen=True, eq=False)
class CodedImage:
    """Received symbols (1-D complex64) of one JSCC-coded image and what decoding needs.

    size: (h, w) the model coded; latent: (groups sent, h/4, w/4); scale: resolution-check
    factor of the image before coding (1.0 = not scaled).
    """

    level: int
    snr_db: float
    size: tuple[int, int]
    latent: tuple[int, int, int]
    scale: float
    symbols: np.ndarray


def pack(image: CodedImage) -> bytes:
    """Bytes of a coded image (symbols rounded to float16)."""
    s = np.asarray(image.symbols, np.complex64)
    pairs = np.empty((s.size, 2), "<f2")
    pairs[:, 0], pairs[:, 1] = s.real, s.imag
    head = _HEAD.pack(image.level, image.snr_db, *image.size, *image.latent, image.scale, s.size)
    return head + pairs.tobytes()


def symbol_count(data: bytes) -> int:
    """Channel uses a payload states (0 when it is shorter than its header)."""
    return _HEAD.unpack_from(data)[-1] if len(data) >= _HEAD.size else 0


def unpack(data: bytes) -> CodedImage:
    """Inverse of :func:`pack`; PayloadError for a malformed payload."""
    if len(data) < _HEAD.size:
        raise PayloadError(f"JSCC payload of {len(data)} bytes is shorter than its header")
    level, snr, h, w, g, lh, lw, scale, count = _HEAD.unpack_from(data)
    if count > MAX_SYMBOLS or len(data) != _HEAD.size + 4 * count:
        raise PayloadError(f"JSCC payload states {count} symbols but holds "
                           f"{(len(data) - _HEAD.size) / 4:g}")
    if not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE and math.isfinite(snr)
            and math.isfinite(scale) and 0 < scale <= 1 and g * lh * lw == count):
        raise PayloadError("JSCC payload has an out-of-range size, SNR, scale or latent shape")
    pairs = np.frombuffer(data, "<f2", offset=_HEAD.size).reshape(count, 2).astype(np.float32)
    if not np.isfinite(pairs).all():
        raise PayloadError("JSCC payload holds non-finite symbols")
    symbols = (pairs[:, 0] + 1j * pairs[:, 1]).astype(np.complex64)
    return CodedImage(level, snr, (h, w), (g, lh, lw), scale, symbols)


def transmission(coded: CodedImage, original_size: tuple[int, int]) -> Transmission:
    """A codec Transmission of received symbols (to decode them); ``original_size`` (h, w)
    is the size to restore after decoding."""
    g, lh, lw = coded.latent
    return Transmission(symbols=coded.symbols, level=coded.level, snr_db=coded.snr_db,
                        size=coded.size, latent_hw=(lh, lw), planes_sent=g,
                        original_size=original_size, scale=coded.scale)
