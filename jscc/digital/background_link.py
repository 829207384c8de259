r"""Backgrounds over a digital link: an image codec plus a channel code.

A segment's background is static and sent once (again on a refresh), not once per frame,
so it does not need JSCC's graceful per-frame behaviour. A conventional image codec
(JPEG, WebP, HEVC-intra) over a channel code gives it a far higher quality in the same
channel uses: on an ASL frame at 0 dB, 76,800 channel uses carry the background at
about 35 dB through HEVC-intra against about 27 dB through the edge JSCC model.

Budget, for ``k`` channel uses at SNR :math:`\gamma` dB:

.. math:: B = \lfloor k \, \eta(\gamma - m) \rfloor

with :math:`\eta` the spectral efficiency of the best scheme of the LTE-like MCS table
(:mod:`jscc.digital.mcs`) usable at :math:`\gamma - m`, and ``m`` the margin every digital
link of this project uses (:data:`jscc.digital.budget.MCS_MARGIN_DB`, 1 dB above the
table's 10 %-BLER thresholds: the block error rate is then negligible and the bits arrive
error-free; :func:`jscc.digital.budget.bit_budget` with rule ``mcs``). Each codec sends
the image at the largest quality whose bitstream fits ``B``; the one with the best PSNR
against the original is sent, and the channel uses counted are the share of ``k`` its
bits take. Below the table's lowest threshold nothing fits and :func:`code_background`
returns None: the caller then sends the background through JSCC, which has no cliff.

Over Rayleigh block fading the sender is assumed to know each block's gain (adaptive
coding per block, as in :mod:`jscc.digital.budget`), which makes the budget an upper bound.

Payload (network byte order): codec id u8 | channel uses u32 | bitstream.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from jscc.channel import ChannelConfig
from jscc.digital.budget import bit_budget, fading_gains
from jscc.digital.image_codecs import CODECS, RateSearch
from jscc.metrics import psnr

CODEC_IDS: tuple[str, ...] = ("jpeg", "webp", "hevc")  # wire id = index
_HEAD = struct.Struct("!BI")


@dataclass(frozen=True, eq=False)
class CodedBackground:
    """A background as it crosses the digital link.

    codec: name in :data:`CODEC_IDS`; data: the bitstream, headers included;
    channel_uses: complex channel uses it occupies; image: what the receiver decodes,
    H x W x 3 uint8 RGB.
    """

    codec: str
    data: bytes
    channel_uses: int
    image: np.ndarray


def code_background(image: np.ndarray, snr_db: float, channel_uses: int,
                    codecs: Sequence[str] = CODEC_IDS,
                    channel: ChannelConfig = ChannelConfig(),  # noqa: B008 (frozen)
                    rng: np.random.Generator | None = None) -> CodedBackground | None:
    """Code ``image`` (H x W x 3 uint8) for at most ``channel_uses`` uses at ``snr_db``.

    codecs: names from :data:`CODEC_IDS` to try (the MCS is picked by the project's one
    margin rule, :data:`jscc.digital.budget.MCS_MARGIN_DB`); channel/rng: Rayleigh block
    gains are drawn from ``rng``.
    Returns None when no codec fits the budget (below the MCS table's cliff).
    """
    unknown = [c for c in codecs if c not in CODEC_IDS]
    if unknown or not codecs:
        raise ValueError(f"unknown background codec(s) {unknown or codecs}: choose from "
                         f"{', '.join(CODEC_IDS)}")
    gains = None
    if channel.kind != "awgn":
        gains = fading_gains(channel_uses, channel, rng or np.random.default_rng(0))
    budget = bit_budget(channel_uses, snr_db, "mcs", gains)
    if budget <= 0:  # below the MCS cliff: no codec needs to be tried
        return None
    best = None
    for name in codecs:
        search = RateSearch(CODECS[name], image)
        index = search.largest_fitting(budget)
        if index is None:
            continue
        fit = search.fit(budget)
        quality = psnr(image, fit.image)
        if best is None or quality > best[0]:
            best = quality, name, search.data(index), fit.image
    if best is None:
        return None
    _, name, data, decoded = best
    uses = math.ceil(channel_uses * 8 * len(data) / budget)
    return CodedBackground(name, data, uses, decoded)


def pack(coded: CodedBackground) -> bytes:
    """The wire payload of a coded background."""
    return _HEAD.pack(CODEC_IDS.index(coded.codec), coded.channel_uses) + coded.data


def channel_uses(data: bytes) -> int:
    """Channel uses a payload states (0 when it is shorter than its header)."""
    return _HEAD.unpack_from(data)[1] if len(data) >= _HEAD.size else 0


def decode(data: bytes, height: int, width: int) -> np.ndarray:
    """The H x W x 3 uint8 image of a payload; ValueError (one line) when it is malformed,
    names an unknown codec, or does not decode to ``height`` x ``width``."""
    if len(data) <= _HEAD.size:
        raise ValueError(f"coded background of {len(data)} bytes is shorter than its header")
    codec_id, _ = _HEAD.unpack_from(data)
    if codec_id >= len(CODEC_IDS):
        raise ValueError(f"coded background names unknown codec id {codec_id}")
    name, stream = CODEC_IDS[codec_id], data[_HEAD.size:]
    if name != "hevc":
        _check_header(name, stream, height, width)
    try:
        return CODECS[name].decode(stream, (height, width))
    except ValueError:
        raise
    except Exception as exc:  # a decoder's own error on a hostile stream
        raise ValueError(f"{name} background does not decode: {exc}") from None


def _check_header(name: str, stream: bytes, height: int, width: int) -> None:
    """Refuse a Pillow stream of another format or size before its pixels are decoded."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(stream)) as im:
            fmt, size = im.format, im.size
    except Exception:  # noqa: BLE001 (Pillow raises many types on garbage)
        raise ValueError(f"{name} background is not a readable image") from None
    if fmt != name.upper() or size != (width, height):
        raise ValueError(f"{name} background is a {fmt} of {size[0]}x{size[1]}, "
                         f"expected {width}x{height}")
