"""Conventional still-image codecs at a bit budget: JPEG, WebP, HEVC-intra.

Each codec maps an RGB image (H x W x 3 uint8) and one integer setting to the exact bytes
a receiver needs, headers included, and back. ``settings`` run from the lowest to the highest
quality, so encoded sizes grow (almost always monotonically) along them. ``RateSearch``
finds the largest setting whose encoding fits a bit budget; when nothing fits the image is
lost and the receiver shows mid-grey (``lost_image``).

Two ways to count an encoding (``Counting``): ``"all"``, every byte of the file, and
``"payload"``, only what a session must send per image once everything that is the same
for every image of a session has been sent once at its start (``payload_bytes``): for
JPEG the quantisation tables (fixed by the quality number, so 1 byte names them), frame
header, APP/COM segments and markers; for WebP the RIFF container; for HEVC the parameter
sets (VPS/SPS/PPS), SEI, Annex-B start codes and the size prefix, as RTP carries them out
of band (RFC 7798). The receiver still decodes the whole file: the rule only decides what
is charged per image, and it is the literature's "BPG + capacity" accounting.
"""

from __future__ import annotations

import fractions
import io
import math
import struct
from dataclasses import dataclass
from typing import Literal, Protocol

import av
import numpy as np
from PIL import Image

GREY = 128
Counting = Literal["all", "payload"]
COUNTINGS: tuple[str, ...] = ("all", "payload")


class ImageCodec(Protocol):
    """What the rate search needs from a codec."""

    name: str
    settings: tuple[int, ...]

    def encode(self, image: np.ndarray, setting: int) -> bytes:
        """Encode an H x W x 3 uint8 RGB image; returns every byte that is sent."""

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        """Decode to an H x W x 3 uint8 RGB image of ``shape`` (H, W)."""

    def payload_bytes(self, data: bytes) -> int:
        """Bytes of ``data`` that must be sent per image (see the module docstring)."""


def _jpeg_payload(data: bytes) -> int:
    """Per-image bytes of a baseline JPEG: DHT and SOS segments, the entropy-coded data,
    and 1 byte naming the quality (its quantisation tables); the rest is session setup."""
    pos, counted = 2, 1  # SOI; the quality byte
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("jpeg: marker expected")
        marker = data[pos + 1]
        length = struct.unpack_from(">H", data, pos + 2)[0]
        if marker == 0xC4:  # DHT: per image (optimised Huffman tables)
            counted += 2 + length
        elif marker == 0xDA:  # SOS: header then entropy-coded data up to EOI
            return counted + len(data) - pos - 2  # all but EOI
        pos += 2 + length
    raise ValueError("jpeg: no start-of-scan segment")


def _webp_payload(data: bytes) -> int:
    """Per-image bytes of a WebP file: the payloads of its chunks (RIFF framing is setup)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("webp: not a RIFF/WEBP file")
    pos, counted = 12, 0
    while pos + 8 <= len(data):
        size = struct.unpack_from("<I", data, pos + 4)[0]
        counted += size
        pos += 8 + size + size % 2
    return counted


def _hevc_payload(data: bytes) -> int:
    """Per-image bytes of an Annex-B HEVC stream: its VCL NAL units (types 0-31), without
    start codes; parameter sets, SEI and the size prefix are session setup."""
    counted = 0
    starts, pos = [], data.find(b"\x00\x00\x01")
    while pos >= 0:
        starts.append(pos)
        pos = data.find(b"\x00\x00\x01", pos + 3)
    for n, start in enumerate(starts):
        begin = start + 3
        end = starts[n + 1] if n + 1 < len(starts) else len(data)
        while end > begin and data[end - 1] == 0:  # zero byte of a 4-byte start code
            end -= 1
        if (data[begin] >> 1) & 0x3F < 32:
            counted += end - begin
    return counted


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

    def payload_bytes(self, data: bytes) -> int:
        """Per-image bytes of a JPEG or WebP file (module docstring)."""
        return _jpeg_payload(data) if self.image_format == "JPEG" else _webp_payload(data)

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

    def payload_bytes(self, data: bytes) -> int:
        """Per-image bytes: the slice NAL units (module docstring)."""
        return _hevc_payload(data)

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


@dataclass(frozen=True)
class Fit:
    """One codec's outcome for one budget.

    setting: the quality/QP used, None when the image was lost; bits: bits sent (0 when
    lost); image: what the receiver shows, H x W x 3 uint8 (mid-grey when lost).
    """

    codec: str
    setting: int | None
    bits: int
    image: np.ndarray

    @property
    def lost(self) -> bool:
        return self.setting is None


class RateSearch:
    """The largest setting of one codec whose encoding of one image fits a bit budget.

    A bracketing search over ``codec.settings`` (sizes grow with quality): it keeps
    ``lo`` (fits) and ``hi`` (does not fit, or past the end) and probes between them,
    interpolating log(size) linearly, falling back to bisection when a probe does not
    halve the bracket. Every encoding and decoding is memoised, so searching the same
    image for several budgets reuses earlier probes. The result ``i`` satisfies
    bits(i) <= budget < bits(i + 1) (the last setting when everything fits).
    """

    def __init__(self, codec: ImageCodec, image: np.ndarray, counting: Counting = "all"):
        check_image(image)
        if counting not in COUNTINGS:
            raise ValueError(f"unknown counting {counting!r}: use one of {COUNTINGS}")
        self.codec = codec
        self.image = image
        self.counting = counting
        self._data: dict[int, bytes] = {}
        self._bits: dict[int, int] = {}
        self._decoded: dict[int, np.ndarray] = {}

    def bits(self, index: int) -> int:
        """Bits charged at ``codec.settings[index]``: the whole encoding, or its per-image
        payload when counting ``"payload"``."""
        if index not in self._data:
            data = self.codec.encode(self.image, self.codec.settings[index])
            self._data[index] = data
            size = len(data) if self.counting == "all" else self.codec.payload_bytes(data)
            self._bits[index] = 8 * size
        return self._bits[index]

    def data(self, index: int) -> bytes:
        """The bitstream at ``codec.settings[index]``, headers included (memoised)."""
        self.bits(index)
        return self._data[index]

    @property
    def encodings(self) -> int:
        """How many settings have been encoded so far."""
        return len(self._data)

    def _bracket(self, budget_bits: int) -> tuple[int, int]:
        """(lo, hi) from the memo: bits(lo) <= budget < bits(hi); hi = len(settings) if unknown."""
        over = [i for i in self._data if self.bits(i) > budget_bits]
        hi = min(over, default=len(self.codec.settings))
        lo = max(i for i in self._data if i < hi and self.bits(i) <= budget_bits)
        return lo, hi

    def _probe(self, lo: int, hi: int, budget_bits: int) -> int:
        """A setting index strictly between lo and hi, interpolated in log(size)."""
        known = sorted(self._data)
        if hi < len(self.codec.settings):
            a, b = lo, hi
        elif len(known) >= 2 and known[-2] < lo:
            a, b = known[-2], lo  # extrapolate the slope below lo
        else:
            return (lo + hi) // 2
        la, lb = math.log(self.bits(a)), math.log(self.bits(b))
        if lb <= la:
            return (lo + hi) // 2
        guess = a + (math.log(max(budget_bits, 1)) - la) / (lb - la) * (b - a)
        return min(max(round(guess), lo + 1), hi - 1)

    def largest_fitting(self, budget_bits: int) -> int | None:
        """Index of the largest setting that fits ``budget_bits``; None when none does."""
        if self.bits(0) > budget_bits:
            return None
        lo, hi = self._bracket(budget_bits)
        bisect = False
        while hi - lo > 1:
            width = hi - lo
            mid = (lo + hi) // 2 if bisect else self._probe(lo, hi, budget_bits)
            if self.bits(mid) <= budget_bits:
                lo = mid
            else:
                hi = mid
            bisect = not bisect and hi - lo > width // 2
        return lo

    def fit(self, budget_bits: int) -> Fit:
        """Encode at the largest fitting setting and decode it, or the lost grey image."""
        index = self.largest_fitting(budget_bits)
        if index is None:
            return Fit(self.codec.name, None, 0, lost_image(self.image.shape))
        if index not in self._decoded:
            self._decoded[index] = self.codec.decode(self._data[index], self.image.shape[:2])
        return Fit(self.codec.name, self.codec.settings[index], self.bits(index),
                   self._decoded[index])


def lost_image(shape: tuple[int, ...]) -> np.ndarray:
    """What the receiver shows for a lost image: mid-grey, uint8 of ``shape``."""
    return np.full(shape, GREY, dtype=np.uint8)
