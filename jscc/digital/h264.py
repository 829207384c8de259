r"""Separate source and channel coding for video: H.264 (libx264) over the same channel uses.

The baseline a user would pick instead of deep JSCC: a conventional video codec behind a
conventional channel code. It gets exactly the channel uses of the method it is compared
with (same channel uses per second, same SNR), turned into a bit budget by one of the rules
of :mod:`jscc.digital.budget`:

* ``capacity``: :math:`\log_2(1 + \mathrm{SNR})` error-free bits per channel use. No real
  channel code reaches capacity at finite block length, so this is an **upper bound** on
  what any separate scheme with H.264 could achieve.
* ``mcs``: the spectral efficiency of the best scheme of a realistic modulation-and-coding
  table (:mod:`jscc.digital.mcs`, LTE CQI) that works at the SNR; **zero below its lowest
  threshold** (-6.7 dB): the cliff.

Over Rayleigh block fading the rule is applied per fading block at the realised SNR and
summed (the sender knows each block's gain: adaptive coding with perfect CSI, again an upper
bound), as in :mod:`jscc.digital.budget`.

With a :class:`FrameLink` (per-frame fading with outdated channel knowledge, multicast) the
sender codes frame ``t`` for the SNR it expects, ``expected_db[t]`` (e.g. the SNR it last
heard about, one frame old, or the weakest receiver's), by the project's one margin rule;
the frame arrives only if the SNR the channel realises, ``realised_db[t]``, supports that
rate (:func:`jscc.digital.budget.decodes`), and is lost otherwise.

The clip is encoded once with libx264 (``veryfast``, ``zerolatency``: no B-frames, so one
packet per frame in order) in average-bit-rate mode with a VBV buffer of one second, so
frames may borrow bits from each other within about a second (H.264 gets up to one second
of buffering delay; the JSCC methods get none). The bit rate is lowered until the whole
stream, headers included, fits the budget.

Keyframes, as a low-latency (video-call) sender places them: a periodic intra frame once a
second (``gop`` frames, default the frame rate), plus an intra frame requested by the
receiver after each loss (picture-loss indication, as WebRTC senders act on), which takes
effect ``feedback_delay`` frames after the lost one (default 2: about one round trip at
30 frames/s).

Loss rule (what the receiver shows): a frame that does not arrive (no bits for it, or its
rate above what the realised SNR supports) is lost, and every later frame up to the next
keyframe is damaged (it predicts from a frame the receiver lacks). A real decoder conceals
both by repeating the last correctly decoded frame (mid-grey, 128, before the first):
these are the *frozen* frames. When no encoding fits the budget (in particular below the
MCS threshold, where the budget is zero) every frame is lost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from jscc.channel import ChannelConfig
from jscc.digital.budget import (
    BUDGET_RULES,
    BudgetRule,
    bit_budget,
    bits_per_use,
    decodes,
    fading_gains,
)
from jscc.digital.image_codecs import lost_image
from jscc.metrics import QualityLog

MIN_BIT_RATE = 1_000  # bit/s: below this libx264 output no longer shrinks


@dataclass(frozen=True)
class H264Config:
    """Baseline settings.

    rule: bit-budget rule ("capacity" upper bound or realistic "mcs"); channel: AWGN or
    Rayleigh block fading; gop: frames between periodic keyframes (None: one second);
    feedback_delay: frames from a lost frame to the keyframe the receiver asks for (None:
    no feedback, periodic keyframes only); preset: libx264 speed preset; tries: encodings
    tried while lowering the bit rate to fit; seed: fading draws.
    """

    rule: BudgetRule = "capacity"
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    gop: int | None = None
    feedback_delay: int | None = 2
    preset: str = "veryfast"
    tries: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rule not in BUDGET_RULES:
            raise ValueError(f"unknown budget rule {self.rule!r}: use one of {BUDGET_RULES}")
        if (self.gop is not None and self.gop < 1) or self.tries < 1 \
                or (self.feedback_delay is not None and self.feedback_delay < 1):
            raise ValueError(f"gop, feedback_delay and tries must be at least 1, got "
                             f"{self.gop}, {self.feedback_delay}, {self.tries}")

    def gop_at(self, fps: float) -> int:
        """Frames between periodic keyframes at ``fps``: ``gop``, or one second."""
        return self.gop or max(1, round(fps))


@dataclass(frozen=True)
class FrameLink:
    """Per-frame SNRs (dB, float arrays of one value per frame): what the sender expects
    when it picks the rate of frame t, and what the channel realises for it."""

    expected_db: np.ndarray
    realised_db: np.ndarray


@dataclass(frozen=True)
class Encoded:
    """One encoding of a clip: bits per frame (headers included), keyframe flags, the
    decoded frames (N x H x W x 3 uint8 RGB) and the bit rate asked of libx264 (bit/s)."""

    bits: np.ndarray
    keyframes: np.ndarray
    decoded: list[np.ndarray]
    bit_rate: int

    @property
    def total_bits(self) -> int:
        return int(self.bits.sum())


def check_frames(frames: list[np.ndarray]) -> tuple[int, int]:
    """(H, W) of a non-empty list of equal-size H x W x 3 uint8 frames; ValueError else."""
    if not frames:
        raise ValueError("no frames to encode")
    shape = frames[0].shape
    if len(shape) != 3 or shape[2] != 3 or frames[0].dtype != np.uint8:
        raise ValueError(f"frames must be H x W x 3 uint8 RGB, got {shape} {frames[0].dtype}")
    if any(f.shape != shape for f in frames):
        raise ValueError("all frames must have the same size")
    return shape[0], shape[1]


def encode_h264(frames: list[np.ndarray], fps: float, bit_rate: int,
                config: H264Config = H264Config(),
                keyframes_at: frozenset[int] = frozenset()) -> Encoded:
    """Encode ``frames`` (H x W x 3 uint8 RGB) at ``bit_rate`` bit/s with libx264 and
    decode them again; frames whose index is in ``keyframes_at`` are forced to be IDR
    frames. Odd sizes are padded by edge replication and cropped back."""
    import av
    from av.video.frame import PictureType

    h, w = check_frames(frames)
    ph, pw = h + h % 2, w + w % 2
    rate = Fraction(fps).limit_denominator(1001)
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = pw, ph, "yuv420p"
    enc.time_base, enc.framerate = 1 / rate, rate
    enc.bit_rate, enc.gop_size = int(bit_rate), config.gop_at(fps)
    # one thread: with zerolatency's sliced threads, libx264's VBV rate control depends on
    # how the slice threads are scheduled, so two runs on a busy machine differ
    enc.options = {"preset": config.preset, "tune": "zerolatency", "forced-idr": "1",
                   "maxrate": str(int(bit_rate)), "bufsize": str(int(bit_rate)),
                   "threads": "1"}
    packets = []
    for i, image in enumerate(frames):
        if (ph, pw) != (h, w):
            image = np.pad(image, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        if i in keyframes_at:
            frame.pict_type = PictureType.I
        packets += enc.encode(frame)
    packets += enc.encode(None)
    if len(packets) != len(frames):
        raise RuntimeError(f"libx264 gave {len(packets)} packets for {len(frames)} frames")
    dec = av.CodecContext.create("h264", "r")
    decoded = []
    for p in packets:
        decoded += [f.to_ndarray(format="rgb24")[:h, :w] for f in dec.decode(p)]
    decoded += [f.to_ndarray(format="rgb24")[:h, :w] for f in dec.decode(None)]
    bits = np.array([8 * p.size for p in packets], dtype=np.int64)
    keyframes = np.array([bool(p.is_keyframe) for p in packets])
    return Encoded(bits, keyframes, decoded, int(bit_rate))


def fit_to_budget(frames: list[np.ndarray], fps: float, budget_bits: int,
                  config: H264Config = H264Config(),
                  keyframes_at: frozenset[int] = frozenset()) -> Encoded | None:
    """The encoding of ``frames`` (keyframes forced at ``keyframes_at``, see
    :func:`encode_h264`) at the highest bit rate tried whose total size fits
    ``budget_bits``; None when even the lowest bit rate does not fit."""
    seconds = len(frames) / fps
    rate = budget_bits / seconds
    for _ in range(config.tries):
        if rate < MIN_BIT_RATE:
            rate = MIN_BIT_RATE
        encoded = encode_h264(frames, fps, int(rate), config, keyframes_at)
        if encoded.total_bits <= budget_bits:
            return encoded
        if rate == MIN_BIT_RATE:
            return None
        rate *= 0.95 * budget_bits / encoded.total_bits
    return None


def frozen_frames(lost: np.ndarray, keyframes: np.ndarray) -> np.ndarray:
    """Per-frame bool: the frame is lost, or damaged because it predicts from a lost frame
    with no keyframe since (see the loss rule in the module docstring)."""
    frozen, broken = np.zeros(len(lost), bool), False
    for i, is_lost in enumerate(lost):
        broken = bool(is_lost) or (broken and not keyframes[i])
        frozen[i] = broken
    return frozen


def shown_frames(decoded: list[np.ndarray] | None, lost: np.ndarray, keyframes: np.ndarray,
                 shape: tuple[int, ...]) -> list[np.ndarray]:
    """What the receiver shows (see the loss rule in the module docstring).

    decoded: the decoded frames (None when nothing was received); lost: per-frame bool;
    keyframes: per-frame bool. Returns one H x W x 3 uint8 image per frame.
    """
    shown, last = [], lost_image(shape)
    for i, frozen in enumerate(frozen_frames(lost, keyframes)):
        if decoded is not None and not frozen:
            last = decoded[i]
        shown.append(last)
    return shown


def h264_baseline(frames: list[np.ndarray], fps: float, channel_uses: int, snr_db: float,
                  config: H264Config = H264Config(), link: FrameLink | None = None) -> dict:
    """Send ``frames`` (H x W x 3 uint8 RGB at ``fps``) with H.264 over ``channel_uses``
    complex channel uses in all (spread evenly over the frames) at ``snr_db`` dB, or, with
    ``link``, at the per-frame SNRs it gives (``snr_db`` is then only recorded).

    Returns {"frames", "psnr_mean", "psnr_p5" (5th percentile of the frames' PSNR),
    "ssim_mean", "budget_bits", "bits", "bit_rate", "frames_lost", "frames_frozen", "fit",
    "rows"} (PSNR in dB, bits in bits, bit_rate in bit/s); a row per frame with its PSNR,
    SSIM, whether it was lost or frozen, and its bit budget.
    """
    check_frames(frames)
    if channel_uses < 0:
        raise ValueError(f"channel uses must be >= 0, got {channel_uses}")
    n = len(frames)
    per_frame = np.diff(np.linspace(0, channel_uses, n + 1).round().astype(np.int64))
    if link is None:
        rng = np.random.default_rng(config.seed)
        budgets = np.array([bit_budget(int(k), snr_db, config.rule,
                                       fading_gains(int(k), config.channel, rng))
                            for k in per_frame])
        lost = (budgets == 0) & (per_frame > 0)
    else:
        if len(link.expected_db) < n or len(link.realised_db) < n:
            raise ValueError(f"the link gives fewer than {n} frames")
        rate = bits_per_use(link.expected_db[:n], config.rule)
        budgets = np.floor(per_frame * rate).astype(np.int64)
        lost = (per_frame > 0) & ~decodes(rate, link.realised_db[:n], config.rule)
    requests = frozenset()
    if config.feedback_delay is not None:
        requests = frozenset(int(i) + config.feedback_delay for i in np.flatnonzero(lost))
    encoded = fit_to_budget(frames, fps, int(budgets.sum()), config, requests) \
        if budgets.sum() else None
    if encoded is None:
        lost, keyframes = np.ones(n, bool), np.zeros(n, bool)
    else:
        keyframes = encoded.keyframes
    frozen = frozen_frames(lost, keyframes)
    shown = shown_frames(None if encoded is None else encoded.decoded, lost, keyframes,
                         frames[0].shape)
    quality = QualityLog()
    for i, (ref, out) in enumerate(zip(frames, shown, strict=True)):
        quality.add(ref, out, index=i)
    psnrs = [r["psnr"] for r in quality.rows]
    finite = [p for p in psnrs if math.isfinite(p)] or [math.nan]
    return {"frames": n,
            "psnr_mean": float(np.mean(finite)), "psnr_p5": float(np.percentile(finite, 5)),
            "ssim_mean": float(np.mean([r["ssim"] for r in quality.rows])),
            "budget_bits": int(budgets.sum()),
            "bits": 0 if encoded is None else encoded.total_bits,
            "bit_rate": None if encoded is None else encoded.bit_rate,
            "frames_lost": int(lost.sum()), "frames_frozen": int(frozen.sum()),
            "fit": encoded is not None,
            "rows": [{"index": i, "psnr": p if math.isfinite(p) else None, "ssim": r["ssim"],
                      "lost": bool(x), "frozen": bool(f), "budget_bits": int(b)}
                     for i, (p, r, x, f, b) in enumerate(zip(psnrs, quality.rows, lost, frozen,
                                                             budgets, strict=True))]}
