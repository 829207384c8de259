r"""Separate source and channel coding: the image baseline the deep JSCC model is compared with.

For an image sent with ``k`` complex channel uses at SNR :math:`\gamma` the channel code
delivers a bit budget ``B`` (:mod:`jscc.digital.budget`: capacity or an MCS table, per fading
block over Rayleigh); each conventional codec (JPEG, WebP, HEVC-intra,
:mod:`jscc.digital.image_codecs`) then sends the image at the largest quality whose encoded
size fits in ``B`` bits: every byte of the file, or (``counting="payload"``) only what a
session sends per image, its once-per-session headers left out
(:mod:`jscc.digital.image_codecs`). When nothing fits the image is lost and the receiver
shows mid-grey (128) everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from jscc.channel import ChannelConfig
from jscc.digital.budget import BUDGET_RULES, BudgetRule, bit_budget, fading_gains
from jscc.digital.image_codecs import CODECS, COUNTINGS, Counting, Fit, RateSearch
from jscc.metrics import QualityLog


@dataclass(frozen=True)
class SeparationConfig:
    """The baseline's settings: budget rule, codecs (names in image_codecs.CODECS), channel,
    and what is charged per image (``counting``: "all" bytes or the per-image "payload")."""

    rule: BudgetRule = "capacity"
    codecs: tuple[str, ...] = ("jpeg", "webp", "hevc", "hevc444")
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    seed: int = 0
    counting: Counting = "all"

    def __post_init__(self):
        if self.rule not in BUDGET_RULES:
            raise ValueError(f"unknown budget rule {self.rule!r}: use one of {BUDGET_RULES}")
        unknown = [c for c in self.codecs if c not in CODECS]
        if unknown or not self.codecs:
            raise ValueError(f"unknown codecs {unknown}: choose from {sorted(CODECS)}")
        if self.counting not in COUNTINGS:
            raise ValueError(f"unknown counting {self.counting!r}: use one of {COUNTINGS}")


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
        searches = [RateSearch(codec, image, config.counting) for codec in codecs]
        for s, snr in enumerate(snrs):
            k = int(channel_uses[s][i])
            budget = bit_budget(k, snr, config.rule, fading_gains(k, config.channel, rng))
            tallies[s].add(image, [search.fit(budget) for search in searches], budget)
    return [tally.summary(snr) for tally, snr in zip(tallies, snrs, strict=True)]
