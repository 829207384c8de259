"""Refit the rate policy of a trained JSCC model alone, encoder and decoder frozen.

In joint training the policy learns through a straight-through Gumbel-softmax sample whose
temperature decays with the run; a long run ends with the temperature near zero, so a
policy that settled early on a level stops exploring (the long wide run kept level 0 from
15 dB up although level 4 was worth 2.6 dB there). With the encoder and decoder frozen
the policy's choice has an exact cost that needs no sampling: for each training image and
SNR the frozen model decodes one channel realisation at every level, and each level k
costs

    c_k = D(x, x_hat_k) + rate_weight * price(SNR) * k / (L - 1)

(D the per-image MSE, or minus the per-image PSNR in dB; k / (L - 1) the fraction of the
selectable groups sent, as in training; price 1, or with ``rate_price="capacity"`` the
AWGN capacity log2(1 + SNR) in bits per channel use: a channel use is priced at what a
capacity-achieving digital link would carry in it, so rate costs more where the channel
is good). The policy minimises the expected cost under its
softmax, sum_k softmax(logits)_k c_k, whose gradient is exact; at run time it takes the
arg-max, i.e. the level of least expected cost, so its operating points lie on the lower
envelope of the fixed levels' distortion-rate curves at every SNR, for the weight
that SNR's price gives. With D in dB the envelope is that of the mean per-image PSNR the
evaluation reports; with D the MSE it is that of the mean MSE, and the easy images, whose
MSE gains are small, give up rate first even where they lose the most PSNR.

AWGN adds noise independent of the symbols, so one pass through the channel of all planes
serves every level: the decoder masks the planes a level does not send.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from jscc.channel import awgn, capacity
from jscc.export import load_checkpoint_model
from jscc.model import AdaptiveJSCC
from jscc.train import CHECKPOINT, DISTORTIONS, LOG, TrainConfig, make_sampler

RATE_PRICES = ("flat", "capacity")


@dataclass(frozen=True)
class PolicyFitConfig:
    """A policy refit: the loss's rate weight and distortion, the schedule and the data."""

    rate_weight: float = 6e-4  # cost of sending every selectable group, distortion's unit
    distortion: str = "mse"  # "mse" (per-image MSE) or "psnr" (minus per-image PSNR, dB)
    rate_price: str = "flat"  # "flat" or "capacity": rate weight x log2(1 + SNR)
    epochs: int = 6
    steps_per_epoch: int = 200
    batch_size: int = 128
    crop: int = 32
    lr: float = 1e-3  # Adam; tenfold lower in the last third of the epochs
    snr_min: float = -5.0
    snr_max: float = 20.0
    photo_patches: float = 0.0  # share of each batch replaced by photo patches
    photo_share: float = 0.0  # share of the steps on photo crops of 96-256 px (video scale)
    batchnorm: str = "batch"  # the policy's BatchNorm: "batch" statistics, or "frozen"
    seed: int = 0

    def __post_init__(self):
        if self.distortion not in DISTORTIONS:
            raise ValueError(f"distortion {self.distortion!r} is not one of {DISTORTIONS}")
        if self.epochs < 1 or self.steps_per_epoch < 1 or self.batch_size < 2:
            raise ValueError("a policy fit needs at least 1 epoch, 1 step and a batch of 2")
        if self.batchnorm not in ("batch", "frozen"):
            raise ValueError(f"batchnorm {self.batchnorm!r} is not 'batch' or 'frozen'")
        if self.rate_price not in RATE_PRICES:
            raise ValueError(f"rate price {self.rate_price!r} is not one of {RATE_PRICES}")
        if self.snr_min > self.snr_max:
            raise ValueError(f"SNR range {self.snr_min}..{self.snr_max} is empty")

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 0-based ``epoch``."""
        return self.lr if epoch < math.ceil(2 * self.epochs / 3) else self.lr / 10


@torch.no_grad()
def level_costs(model: AdaptiveJSCC, x: torch.Tensor, snr: torch.Tensor, rate_weight: float,
                distortion: str, generator: torch.Generator | None = None,
                rate_price: str = "flat") -> tuple[torch.Tensor, torch.Tensor]:
    """(source features (B, C, h, w), cost (B, L)) of sending images x (B, 3, H, W) in
    [0, 1] at SNR ``snr`` (B,) dB at every level of the frozen ``model``, over one AWGN
    realisation shared by the levels (the module docstring gives the cost)."""
    if rate_price == "capacity":
        rate_weight = rate_weight * capacity(snr.float())
    feats = model.features(x)
    y = awgn(model.all_symbols(feats, snr), snr, generator)
    levels = model.cfg.levels
    costs = []
    for k in range(levels):
        x_hat = model.decode(y, snr, k, size=tuple(x.shape[-2:])).float()
        mse = ((x_hat - x) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        d = 10 * torch.log10(mse) if distortion == "psnr" else mse
        costs.append(d + rate_weight * k / (levels - 1))
    return feats, torch.stack(costs, dim=1)


@dataclass
class PolicyEpoch:
    """One row of the refit's log."""

    epoch: int  # 1-based
    expected_cost: float  # mean of the softmax-weighted cost (the loss)
    regret: float  # mean cost of the arg-max level minus the least cost of the realisation
    rate_low_snr: float  # mean fraction of selectable groups the arg-max sends, SNR < middle
    rate_high_snr: float
    lr: float
    seconds: float


def fit_policy(model: AdaptiveJSCC, cfg: PolicyFitConfig, sampler, progress: bool = True,
               precision: str = "fp32") -> list[dict]:
    """Train ``model.policy`` in place (everything else frozen, in eval mode) on batches of
    ``sampler`` (:func:`jscc.train.make_sampler`) on the CPU, under bfloat16 autocast when
    ``precision`` is "bf16"; returns the log rows. With ``cfg.batchnorm == "frozen"`` the
    policy's BatchNorm layers keep the running statistics the joint training left (their
    scale and shift still train), so that photo-crop batches of a few large crops, mixed
    with batches of 128 small images, neither normalise over two items nor leave
    statistics of whichever batches came last."""
    from tqdm import tqdm

    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    policy = model.policy
    for p in policy.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    noise = torch.Generator().manual_seed(cfg.seed)
    batches = sampler.batches(cfg.batch_size, rng)
    mid, top = (cfg.snr_min + cfg.snr_max) / 2, model.cfg.levels - 1
    log = []
    for epoch in range(cfg.epochs):
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(epoch)
        policy.train(cfg.batchnorm == "batch")
        sums = np.zeros(2)
        by_snr = {True: [0.0, 0], False: [0.0, 0]}
        start = time.perf_counter()
        for _ in tqdm(range(cfg.steps_per_epoch), desc=f"policy epoch {epoch + 1}/{cfg.epochs}",
                      disable=not progress, file=sys.stderr):
            x = torch.from_numpy(next(batches))
            snr = torch.from_numpy(rng.uniform(cfg.snr_min, cfg.snr_max, x.shape[0])
                                   .astype(np.float32))
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                feats, cost = level_costs(model, x, snr, cfg.rate_weight, cfg.distortion,
                                          noise, cfg.rate_price)
                logits = policy(feats, snr).float()
            loss = (F.softmax(logits, dim=1) * cost.float()).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            chosen = logits.detach().argmax(1)
            picked = cost.gather(1, chosen[:, None])[:, 0]
            sums += (loss.item(), (picked - cost.min(1).values).mean().item())
            for flag in (True, False):
                sel = chosen[(snr < mid) == flag].float() / top
                by_snr[flag][0] += sel.sum().item()
                by_snr[flag][1] += sel.numel()
        n = cfg.steps_per_epoch
        row = PolicyEpoch(epoch + 1, float(sums[0] / n), float(sums[1] / n),
                          by_snr[True][0] / max(by_snr[True][1], 1),
                          by_snr[False][0] / max(by_snr[False][1], 1),
                          cfg.lr_at(epoch), time.perf_counter() - start)
        log.append(asdict(row))
        print(json.dumps(log[-1]), flush=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return log


def refit_checkpoint(checkpoint: str | Path, out: str | Path, cfg: PolicyFitConfig,
                     data: str | Path, photos: str | Path | None = None,
                     cache_dir: str | Path | None = "runs/cache", progress: bool = True,
                     precision: str = "fp32", command: str = "") -> Path:
    """Refit the policy of training checkpoint ``checkpoint`` and write ``out``/last.pt, a
    checkpoint of the same run with the new policy (``semstream jscc export`` takes it;
    its ``policy_fit`` entry records this refit and ``command``) and ``out``/log.json (the
    run's log)."""
    checkpoint, out = Path(checkpoint), Path(out)
    model, ckpt = load_checkpoint_model(checkpoint)
    sampling = TrainConfig(model=model.cfg.name, batch_size=cfg.batch_size, crop=cfg.crop,
                           photo_patches=cfg.photo_patches, photo_share=cfg.photo_share)
    sampler = make_sampler(sampling, data, photos, cache_dir)
    log = fit_policy(model, cfg, sampler, progress, precision)
    out.mkdir(parents=True, exist_ok=True)
    refit = {"format": 1, "model_config": ckpt["model_config"],
             "train_config": ckpt["train_config"], "epoch": ckpt["epoch"],
             "model": model.state_dict(),
             "policy_fit": {"from": str(checkpoint), "config": asdict(cfg), "log": log,
                            "precision": precision, "command": command or "?"}}
    torch.save(refit, out / CHECKPOINT)
    run_log = checkpoint.parent / LOG
    if run_log.exists():
        (out / LOG).write_text(run_log.read_text())
    return out / CHECKPOINT
