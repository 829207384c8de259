r"""Base-station experiment (paper section IV): total quality of three schedulers as the
power budget grows, averaged over random user populations.

Each trial draws ``users`` users with Rayleigh-faded links: user n's noise power relative
to the gain is :math:`N_n = 1/(\bar\gamma\,g_n)` with :math:`g_n \sim \mathrm{Exp}(1)`
(:math:`|h|^2` of :math:`h \sim CN(0,1)`) and mean SNR :math:`\bar\gamma` at unit power.
Payloads are normalised: a direct frame is ``D = direct_bits`` bits per delay bound
(``T = 1``), key information ``C = key_fraction * D``, worth quality ``alpha``; both come
from the sweep's measurements (:func:`measured_inputs`): ``key_fraction`` is proposed's
channel uses over direct's, ``alpha`` proposed's whole-frame PSNR over direct's (AWGN,
mean over clips and SNRs), capped just below 1 as the scheduler needs ``alpha < 1``.
For every ``P_max`` the same users
are scheduled by the exact DP (:func:`stream.basestation.schedule`, power grid of
``P_max / grid`` steps), the greedy rule and "everyone direct"; the mean and standard
error of the total quality :math:`\sum_n \rho_n` over trials are reported.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from stream.basestation import Cell, User, direct_only_schedule, greedy_schedule, schedule

SCHEDULERS = ("dp", "greedy", "direct")


@dataclass(frozen=True)
class BaseStationConfig:
    """users per trial; trials; p_max: budgets to sweep (in units of the noise power at
    unit gain); alpha: quality of key information; key_fraction: C / D; direct_bits: D in
    bits per channel use over T = 1; mean_snr_db: mean SNR at unit power; grid: DP power
    grid steps per P_max; seed."""

    users: int = 8
    trials: int = 100
    p_max: tuple[float, ...] = (0.25, 0.5, 1, 2, 5, 10, 20, 50, 100)
    alpha: float = 0.8
    key_fraction: float = 0.55
    direct_bits: float = 2.0
    mean_snr_db: float = 10.0
    grid: int = 4000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.users < 1 or self.trials < 1 or self.grid < 1:
            raise ValueError("users, trials and grid must be at least 1")
        if not 0 < self.key_fraction < 1:
            raise ValueError(f"key_fraction must lie in (0, 1), got {self.key_fraction}")
        if not self.p_max or min(self.p_max) <= 0:
            raise ValueError("p_max needs at least one positive budget")


ALPHA_CAP = 0.99  # the scheduler's key-information quality must stay below direct's (1)


def measured_inputs(rows: list[dict]) -> tuple[float, float, str] | None:
    """(alpha, key_fraction, where they came from) from sweep rows
    (:func:`stream.experiments.sweep.summary_row`): over the (clip, SNR) points where both
    ``proposed`` and ``direct`` ran on AWGN (video variant), key_fraction = mean of
    proposed's channel uses per frame / direct's, alpha = min(ALPHA_CAP, mean of
    proposed's whole-frame PSNR / direct's). None without such points."""
    direct = {(r["clip"], r["snr"]): r for r in rows if r["method"] == "direct"
              and r["channel"] == "awgn" and r["variant"] == "video"}
    pairs = [(r, direct[r["clip"], r["snr"]]) for r in rows if r["method"] == "proposed"
             and r["channel"] == "awgn" and r["variant"] == "video"
             and (r["clip"], r["snr"]) in direct]
    pairs = [(p, d) for p, d in pairs if p["psnr"] and d["psnr"]]
    if not pairs:
        return None
    fraction = float(np.mean([p["channel_uses_per_frame"] / d["channel_uses_per_frame"]
                              for p, d in pairs]))
    ratio = float(np.mean([p["psnr"] / d["psnr"] for p, d in pairs]))
    return (min(ALPHA_CAP, ratio), fraction,
            f"measured by the sweep over {len(pairs)} (clip, SNR) points on AWGN: "
            f"key_fraction = proposed's channel uses / direct's; alpha = proposed's PSNR / "
            f"direct's = {ratio:.3f}" + (f", capped at {ALPHA_CAP}" if ratio > ALPHA_CAP
                                         else ""))


def draw_users(config: BaseStationConfig, rng: np.random.Generator) -> list[User]:
    """One random population (see the module docstring)."""
    gains = rng.exponential(1.0, config.users)
    snr = 10.0 ** (config.mean_snr_db / 10.0)
    d = config.direct_bits
    return [User(f"u{i}", 1.0 / (snr * g), d, config.key_fraction * d)
            for i, g in enumerate(gains)]


def run_basestation(config: BaseStationConfig = BaseStationConfig()) -> dict:
    """Mean and standard error of total quality per scheduler and P_max.

    Returns {"config": ..., "p_max": [...], "dp"|"greedy"|"direct": {"mean": [...],
    "sem": [...]}, "dp_ge_greedy": bool, "greedy_ge_direct": bool} (every point)."""
    rng = np.random.default_rng(config.seed)
    populations = [draw_users(config, rng) for _ in range(config.trials)]
    totals = {name: np.zeros((len(config.p_max), config.trials)) for name in SCHEDULERS}
    for i, p_max in enumerate(config.p_max):
        cell = Cell(alpha=config.alpha, T=1.0, G=1.0, L=0.0, P_max=float(p_max))
        for t, users in enumerate(populations):
            totals["dp"][i, t] = schedule(cell, users, p_max / config.grid).total_quality
            totals["greedy"][i, t] = greedy_schedule(cell, users).total_quality
            totals["direct"][i, t] = direct_only_schedule(cell, users).total_quality
    result = {"config": asdict(config), "p_max": list(config.p_max)}
    for name, values in totals.items():
        result[name] = {"mean": values.mean(axis=1).tolist(),
                        "sem": (values.std(axis=1) / math.sqrt(config.trials)).tolist()}
    dp, greedy, direct = (np.array(result[n]["mean"]) for n in SCHEDULERS)
    result["dp_ge_greedy"] = bool(np.all(dp >= greedy - 1e-9))
    result["greedy_ge_direct"] = bool(np.all(greedy >= direct - 1e-9))
    return result
