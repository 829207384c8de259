r"""Separate source and channel coding: the baseline the deep JSCC model is compared with.

For an image sent with ``k`` complex channel uses at SNR :math:`\gamma` the channel code
delivers a bit budget ``B``; a conventional codec (JPEG, WebP, HEVC-intra) then sends the
image at the largest quality whose encoded size, headers included, fits in ``B`` bits. When
nothing fits the image is lost and the receiver shows mid-grey (128) everywhere.

Budget rules:

* ``capacity``: :math:`B = \lfloor k \log_2(1 + 10^{\gamma/10}) \rfloor`, a capacity-achieving
  channel code with no errors. No real code (LDPC, turbo, polar) reaches this at finite block
  length, so the baseline built on it is an *upper bound* on separate coding.
* ``mcs``: :math:`B = \lfloor k \cdot \eta(\gamma) \rfloor` with the spectral efficiency
  :math:`\eta` of the best scheme of a realistic MCS table (:mod:`jscc.mcs`) that works at
  :math:`\gamma`; zero below its lowest threshold (the cliff).

Over Rayleigh block fading (``h ~ CN(0,1)`` per block of ``block_size`` uses) the same rule
is applied per block at the realised SNR :math:`\gamma |h|^2` and summed: the sender is
assumed to know each block's gain (adaptive coding with perfect CSI), again an upper bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from tqdm import tqdm

from jscc.channel import ChannelConfig
from jscc.image_codecs import CODECS, ImageCodec, check_image
from jscc.mcs import spectral_efficiency
from jscc.metrics import QualityLog

GREY = 128
BudgetRule = Literal["capacity", "mcs"]
BUDGET_RULES: tuple[str, ...] = ("capacity", "mcs")


def bits_per_use(snr_db, rule: BudgetRule = "capacity") -> np.ndarray:
    """Error-free bits per complex channel use at ``snr_db`` (scalar or array, dB)."""
    snr_db = np.asarray(snr_db, dtype=np.float64)
    if rule == "capacity":
        return np.log2(1.0 + np.power(10.0, snr_db / 10.0))
    if rule == "mcs":
        return spectral_efficiency(snr_db)
    raise ValueError(f"unknown budget rule {rule!r}: use one of {BUDGET_RULES}")


def fading_gains(channel_uses: int, channel: ChannelConfig,
                 rng: np.random.Generator) -> np.ndarray | None:
    """Power gains |h|^2 per channel use (length ``channel_uses``), or None for AWGN.

    Rayleigh: h ~ CN(0, 1) drawn per block of ``channel.block_size`` uses (last block shorter).
    """
    if channel.kind == "awgn":
        return None
    n_blocks = math.ceil(channel_uses / channel.block_size)
    gains = rng.exponential(1.0, n_blocks)  # |h|^2 of h ~ CN(0, 1)
    return np.repeat(gains, channel.block_size)[:channel_uses]


def bit_budget(channel_uses: int, snr_db: float, rule: BudgetRule = "capacity",
               gains: np.ndarray | None = None) -> int:
    """Bits the channel code delivers in ``channel_uses`` uses at ``snr_db`` dB.

    gains: optional |h|^2 per use (see :func:`fading_gains`); the rule then applies to each
    use's SNR. With ``rule="capacity"`` this is an upper bound for any real code.
    """
    if channel_uses < 0:
        raise ValueError(f"channel uses must be >= 0, got {channel_uses}")
    if gains is None:
        return math.floor(channel_uses * float(bits_per_use(snr_db, rule)))
    if len(gains) != channel_uses:
        raise ValueError(f"need one gain per channel use: {len(gains)} != {channel_uses}")
    with np.errstate(divide="ignore"):
        per_use_db = snr_db + 10.0 * np.log10(gains)
    return math.floor(float(bits_per_use(per_use_db, rule).sum()))


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

    def __init__(self, codec: ImageCodec, image: np.ndarray):
        check_image(image)
        self.codec = codec
        self.image = image
        self._data: dict[int, bytes] = {}
        self._decoded: dict[int, np.ndarray] = {}

    def bits(self, index: int) -> int:
        """Encoded size in bits at ``codec.settings[index]``, headers included."""
        if index not in self._data:
            self._data[index] = self.codec.encode(self.image, self.codec.settings[index])
        return 8 * len(self._data[index])

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


@dataclass(frozen=True)
class SeparationConfig:
    """The baseline's settings: budget rule, codecs (names in image_codecs.CODECS), channel."""

    rule: BudgetRule = "capacity"
    codecs: tuple[str, ...] = ("jpeg", "webp", "hevc", "hevc444")
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    seed: int = 0

    def __post_init__(self):
        if self.rule not in BUDGET_RULES:
            raise ValueError(f"unknown budget rule {self.rule!r}: use one of {BUDGET_RULES}")
        unknown = [c for c in self.codecs if c not in CODECS]
        if unknown or not self.codecs:
            raise ValueError(f"unknown codecs {unknown}: choose from {sorted(CODECS)}")


@dataclass
class _SnrTally:
    """Per-codec and best-of quality logs for one SNR."""

    logs: dict[str, QualityLog]
    bits: dict[str, list[int]]
    lost: dict[str, int]
    budgets: list[int] = field(default_factory=list)
    wins: dict[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, names: Sequence[str]) -> _SnrTally:
        keys = [*names, "best"]
        return cls({k: QualityLog() for k in keys}, {k: [] for k in keys}, dict.fromkeys(keys, 0))

    def add(self, reference: np.ndarray, fits: Sequence[Fit], budget: int) -> None:
        self.budgets.append(budget)
        scored = []
        for fit in fits:
            scored.append((self.logs[fit.codec].add(reference, fit.image), fit))
            self._count(fit.codec, fit)
        row, best = min(scored, key=lambda s: s[0]["mse"])
        self.logs["best"].rows.append(dict(row))  # already scored: no second SSIM
        self._count("best", best)
        if not best.lost:
            self.wins[best.codec] = self.wins.get(best.codec, 0) + 1

    def _count(self, key: str, fit: Fit) -> None:
        self.bits[key].append(fit.bits)
        self.lost[key] += fit.lost

    def summary(self, snr: float) -> dict:
        def one(key: str) -> dict:
            s = self.logs[key].summary()
            n = s["frames"]
            return {"psnr": s["psnr_mean"], "psnr_pooled": s["psnr_pooled"],
                    "ssim": s["ssim_mean"], "lost": self.lost[key] / n,
                    "bits": float(np.mean(self.bits[key]))}

        codecs = {k: one(k) for k in self.logs if k != "best"}
        return {"snr": snr, "budget_bits": float(np.mean(self.budgets)),
                "codecs": codecs, "best": {**one("best"), "wins": dict(self.wins)}}


def separation_baseline(images: Sequence[np.ndarray], snrs: Sequence[float],
                        channel_uses: Sequence[Sequence[int]],
                        config: SeparationConfig = SeparationConfig(),
                        progress: bool = False) -> list[dict]:
    """Code every image separately at every SNR and summarise per SNR.

    images: N images, H x W x 3 uint8 RGB (sizes may differ). channel_uses[s][i]: complex
    channel uses image i gets at snrs[s] (e.g. what the JSCC model used). Returns one dict
    per SNR: {"snr", "budget_bits", "codecs": {name: {psnr, psnr_pooled, ssim, lost, bits}},
    "best": {..., "wins": {codec: images it won}}}; psnr is the mean of per-image PSNRs (dB),
    lost the fraction of images lost, bits the mean bits sent per image. progress: show a
    progress bar on stderr.
    """
    if not images:
        raise ValueError("no images to code")
    if len(channel_uses) != len(snrs) or any(len(k) != len(images) for k in channel_uses):
        raise ValueError("channel_uses must hold one count per image for every SNR")
    rng = np.random.default_rng(config.seed)
    codecs = [CODECS[name] for name in config.codecs]
    tallies = [_SnrTally.empty(config.codecs) for _ in snrs]
    for i, image in enumerate(tqdm(images, "separation", disable=not progress, leave=False)):
        searches = [RateSearch(codec, image) for codec in codecs]
        for s, snr in enumerate(snrs):
            k = int(channel_uses[s][i])
            budget = bit_budget(k, snr, config.rule, fading_gains(k, config.channel, rng))
            tallies[s].add(image, [search.fit(budget) for search in searches], budget)
    return [tally.summary(snr) for tally, snr in zip(tallies, snrs, strict=True)]
