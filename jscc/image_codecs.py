"""Conventional still-image codecs for the separate-coding baseline: JPEG, WebP, HEVC-intra.

Each codec maps an RGB image (H x W x 3 uint8) and one integer setting to the exact bytes
a receiver needs, headers included, and back. ``settings`` run from the lowest to the highest
quality, so encoded sizes grow (almost always monotonically) along them.
"""

from __future__ import annotations

import fractions
import io
import struct
from dataclasses import dataclass
from typing import Literal, Protocol

import av
import numpy as np
from PIL import Image


class ImageCodec(Protocol):
    """What the rate search needs from a codec."""

    name: str
    settings: tuple[int, ...]

    def encode(self, image: np.ndarray, setting: int) -> bytes:
        """Encode an H x W x 3 uint8 RGB image; returns every byte that is sent."""

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        """Decode to an H x W x 3 uint8 RGB image of ``shape`` (H, W)."""


def check_image(image: np.ndarray) -> None:
    """Raise ValueError unless ``image`` is a non-empty H x W x 3 uint8 array."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(
            f"expected an H x W x 3 uint8 RGB image, got {image.dtype} {image.shape}"
        )


@dataclass(frozen=True)
class PillowCodec:
    """A codec Pillow writes in ``image_format``; the setting is its ``quality``."""

    name: str
    image_format: str
    options: tuple[tuple[str, object], ...] = ()
    settings: tuple[int, ...] = tuple(range(0, 101))

    def encode(self, image: np.ndarray, setting: int) -> bytes:
        """Encode at quality ``setting``; the bytes include the container headers."""
        check_image(image)
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, self.image_format, quality=int(setting),
                                    **dict(self.options))
        return buf.getvalue()

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        """Decode the bytes to RGB; ``shape`` is only checked."""
        try:
            with Image.open(io.BytesIO(data)) as im:
                rgb = np.asarray(im.convert("RGB"))
        except (OSError, SyntaxError):
            rgb = None
        if rgb is None or rgb.shape[:2] != tuple(shape):
            raise ValueError(f"{self.name}: the bitstream does not decode to a {shape} image")
        return rgb


# Optimised Huffman tables: a standard JFIF header alone is ~600 bytes, this saves ~300.
JPEG = PillowCodec("jpeg", "JPEG", (("optimize", True),), tuple(range(1, 101)))
# method 6: libwebp's slowest, best-compressing mode; quality 0 is its smallest output.
WEBP = PillowCodec("webp", "WEBP", (("method", 6),))

# x265 refuses pictures smaller than 16 x 16; 4:2:0 needs even sizes.
HEVC_MIN_SIDE = 16
_SIZE_PREFIX = struct.Struct(">HH")


def hevc_coded_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """The (H, W) actually coded: at least 16 and even in each direction."""
    return tuple(max(HEVC_MIN_SIDE, s + s % 2) for s in shape)  # type: ignore[return-value]


@dataclass(frozen=True)
class HevcIntra:
    """HEVC intra (one frame, libx265 through PyAV) at a constant QP.

    settings are QPs from 51 (lowest quality) down to 0. The bytes are the raw Annex-B
    bitstream (VPS, SPS, PPS, slice; x265's version SEI is switched off). A picture that
    must be padded to x265's minimum or to even size (edge replication) carries a 4-byte
    prefix with its true height and width, counted like the rest.
    """

    name: str = "hevc"
    preset: str = "slow"
    chroma: Literal["420", "444"] = "420"
    settings: tuple[int, ...] = tuple(range(51, -1, -1))

    @property
    def _pix_fmt(self) -> str:
        return f"yuv{self.chroma}p"

    def encode(self, image: np.ndarray, setting: int) -> bytes:
        """Encode at QP ``setting`` (0..51)."""
        check_image(image)
        h, w = image.shape[:2]
        ch, cw = hevc_coded_shape((h, w))
        padded = np.pad(image, ((0, ch - h), (0, cw - w), (0, 0)), mode="edge")
        ctx = av.CodecContext.create("libx265", "w")
        ctx.width, ctx.height, ctx.pix_fmt = cw, ch, self._pix_fmt
        ctx.time_base = fractions.Fraction(1, 25)
        ctx.options = {
            "preset": self.preset,
            "tune": "psnr",  # no psycho-visual tuning: it costs PSNR
            "x265-params": f"qp={int(setting)}:keyint=1:info=0:log-level=none"
                           ":frame-threads=1:pools=none",
        }
        frame = av.VideoFrame.from_ndarray(padded, format="rgb24").reformat(format=self._pix_fmt)
        packets = [*ctx.encode(frame), *ctx.encode(None)]
        stream = b"".join(bytes(p) for p in packets)
        prefix = _SIZE_PREFIX.pack(h, w) if (ch, cw) != (h, w) else b""
        return prefix + stream

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        """Decode with FFmpeg's HEVC decoder and crop any padding away."""
        h, w = shape
        if hevc_coded_shape(shape) != (h, w):
            if _SIZE_PREFIX.unpack_from(data) != (h, w):
                raise ValueError(f"hevc: the size prefix does not say {shape}")
            data = data[_SIZE_PREFIX.size:]
        ctx = av.CodecContext.create("hevc", "r")
        frames = [*ctx.decode(av.Packet(data)), *ctx.decode(None)]
        if len(frames) != 1:
            raise ValueError(f"hevc: expected one decoded picture, got {len(frames)}")
        return np.ascontiguousarray(frames[0].to_ndarray(format="rgb24")[:h, :w])


HEVC = HevcIntra()
HEVC_444 = HevcIntra(name="hevc444", chroma="444")
CODECS: dict[str, ImageCodec] = {c.name: c for c in (JPEG, WEBP, HEVC, HEVC_444)}
