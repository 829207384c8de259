"""Training of the adaptive-rate JSCC model: schedule, resumable checkpoints, JSON log.

Loss = MSE(x, x_hat) + rate_weight * (fraction of the selectable groups sent), with the
training SNR drawn uniformly per image. A short warm-up sends every image at a random
level (no rate term) so that the decoder learns to use every group before the policy
starts; without it the policy settles on the lowest levels while the extra groups are
still useless to the decoder, and never leaves them. After it, a share of each batch
keeps a random level so that every fixed rate stays trained.

The schedule follows Yang & Kim scaled to the epoch budget: the paper's 400 epochs are
150 at lr 5e-4, 150 at 5e-5, then 100 of fine-tuning the decoder with encoder and policy
frozen (fractions 0.375 / 0.75), and the Gumbel temperature 5 * exp(-0.015 * epoch)
decays by the same total amount over the run.

The output folder holds ``last.pt`` (model + optimizer + RNG state, written atomically at
the end of every epoch) and ``log.json``; rerunning the same command resumes from there.

Under ``torchrun`` (WORLD_SIZE > 1) the run is data-parallel: each process wraps the model
in DistributedDataParallel (gloo on CPU, nccl on CUDA), draws its own batches from a seed
of (seed, rank, epoch), runs 1/WORLD_SIZE of the epoch's steps, and rank 0 alone writes
the checkpoint and the log (whose batch statistics are rank 0's).

At the end of every epoch the BatchNorm running statistics are recomputed as plain
averages over ``RECALIBRATION_BATCHES`` fresh batches of the training mix (no gradients;
:func:`recalibrate_batchnorm`). The running averages that training keeps (momentum 0.1)
follow the last few batches, and with CIFAR-10 batches and photo-crop batches of other
sizes interleaved they swung the exported model by up to 6 dB from one epoch to the next
on CIFAR-10 (19.3 vs 25.4 dB at 1/12, 10 dB); averaged statistics also gave +0.5 dB on
CIFAR-10 and +1.5 dB on the photos over the running ones. Training steps use batch
statistics and are not affected; the frozen phase runs the encoder on these statistics.

Beside the trained weights the run keeps their exponential moving average (decay
``EMA_DECAY`` per step, about three 300-step epochs), which is what ``last.pt`` exports
and what a run started from it takes (``weights(ckpt)``): with lr 5e-4 and CIFAR-10 and
photo batches interleaved the raw weights' held-out PSNR swung by 2 dB from one epoch to
the next. The BatchNorm statistics of both are recalibrated at the end of every epoch.

How the arithmetic runs is not part of the run's definition and may change on resume:
``precision='bf16'`` runs forward and backward under bfloat16 autocast (weights, optimizer
and the channel stay fp32; on CPUs with AMX or AVX512-BF16 a step takes about half the
time), and CPU runs keep activations channels-last. Each log row records its precision.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from jscc.data import CropSampler, MixedSampler, PhotoCropSampler, load_images
from jscc.device import cpu_bf16_native
from jscc.device_option import check_precision
from jscc.export import load_model, weights
from jscc.model import AdaptiveJSCC, JSCCConfig, get_config
from jscc.widen import widen_model

CHECKPOINT = "last.pt"
RECALIBRATION_BATCHES = 50
EMA_DECAY = 0.999
LOG = "log.json"
PAPER_EPOCHS = 400


DISTORTIONS = ("mse", "psnr")


def distortion(per_image_mse: torch.Tensor, kind: str) -> torch.Tensor:
    """The distortion term of the loss from a batch's per-image MSE (B, images in [0, 1]).

    "mse": the batch's mean MSE, as Yang & Kim train. Its gradient weights an image by its
    own error, so the noisy low-SNR images of a batch drawn over a wide SNR range dominate
    and the high-SNR ones, whose errors are 10-30x smaller, hardly train.
    "psnr": minus the batch's mean per-image PSNR in dB, 10 log10(MSE) averaged, which is
    what the evaluation reports; every image weighs alike whatever its SNR. Its unit is dB,
    so a rate weight beside it is in dB too (what sending every selectable group must buy).
    """
    if kind == "psnr":
        return (10 * torch.log10(per_image_mse.clamp_min(1e-10))).mean()
    return per_image_mse.mean()


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (a resumed run must use the same values)."""

    model: str = "edge"
    epochs: int = 80
    batch_size: int = 128
    crop: int = 32
    lr: float = 5e-4
    lr_low: float = 5e-5
    lr_drop_frac: float = 0.375  # paper: 150 of 400 epochs
    freeze_frac: float = 0.75  # paper: 300 of 400 epochs
    temperature0: float = 5.0
    temperature_decay: float = 0.015  # per epoch over the paper's 400 epochs
    rate_weight: float = 8e-4  # in the distortion's unit: MSE, or dB for "psnr"
    distortion: str = "mse"  # or "psnr": minimise -(mean per-image PSNR), see distortion()
    warmup_frac: float = 0.1  # first epochs: random levels for all, no rate term
    random_level_frac: float = 0.25  # afterwards: share of each batch at a random level
    snr_min: float = 0.0
    snr_max: float = 20.0
    seed: int = 0
    steps_per_epoch: int = 0  # 0 = one pass over the data
    photo_share: float = 0.0  # share of steps that train on crops of large photos
    photo_patches: float = 0.0  # share of each small batch replaced by photo patches
    init: str = ""  # checkpoint whose weights (widened if narrower) start a fresh run

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch size must be at least 1")
        if self.snr_min > self.snr_max:
            raise ValueError(f"SNR range {self.snr_min}..{self.snr_max} is empty")
        if self.distortion not in DISTORTIONS:
            raise ValueError(f"distortion {self.distortion!r} is not one of {DISTORTIONS}")
        if not 0.0 <= self.random_level_frac <= 1.0:
            raise ValueError(f"random-level share {self.random_level_frac} is outside 0..1")

    def lr_at(self, epoch: int) -> float:
        """Learning rate for 0-based ``epoch``."""
        return self.lr if epoch < round(self.lr_drop_frac * self.epochs) else self.lr_low

    def warmup_at(self, epoch: int) -> bool:
        """True in the warm-up phase (every image at a random level, policy unused)."""
        return epoch < round(self.warmup_frac * self.epochs)

    def frozen_at(self, epoch: int) -> bool:
        """True in the fine-tuning phase (encoder and policy frozen)."""
        return epoch >= round(self.freeze_frac * self.epochs)

    def temperature_at(self, epoch: int) -> float:
        """Gumbel-softmax temperature for ``epoch`` (paper decay rescaled to ``epochs``)."""
        rate = self.temperature_decay * PAPER_EPOCHS / self.epochs
        return self.temperature0 * math.exp(-rate * epoch)


@dataclass
class EpochStats:
    """One row of log.json."""

    epoch: int  # 1-based count of completed epochs
    loss: float
    mse: float
    psnr: float  # mean per-image PSNR on the training batches, dB
    rate: float  # mean channel uses per source value of the policy's choices
    rate_low_snr: float  # the same for training SNR below the middle of the range
    rate_high_snr: float
    warmup: bool
    lr: float
    temperature: float
    frozen: bool
    steps: int
    seconds: float
    cpu_seconds: float = 0.0  # process CPU time of the epoch, all threads
    precision: str = "fp32"  # arithmetic of the epoch's forward/backward passes
    bn_batches: int = 0  # batches the BatchNorm statistics were averaged over at the end
    ema_decay: float = 0.0  # per-step decay of the weights' moving average (0: none kept)


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_json(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def make_optimizer(model: AdaptiveJSCC, lr: float) -> torch.optim.Adam:
    """Adam with the paper's betas (0.5, 0.999)."""
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.999))


def set_frozen(model: AdaptiveJSCC, frozen: bool) -> None:
    """Freeze (eval mode, no grad) or unfreeze the transmitter side: encoders and policy."""
    for module in model.encoder_modules():
        module.train(not frozen)
        for p in module.parameters():
            p.requires_grad_(not frozen)


def init_distributed(device: str) -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank(), world


def resolve_precision(precision: str, device: str) -> str:
    """'fp32' or 'bf16' for a ``--precision`` value: 'auto' takes bf16 where the hardware
    computes it natively (CPU AMX / AVX512-BF16, CUDA compute capability 8+). fp16 is
    refused (it would need loss scaling)."""
    check_precision(precision)
    if precision == "fp16":
        raise ValueError("training runs fp32 or bf16, not fp16: use --precision bf16 or auto")
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_bf16_native() else "fp32"


@torch.no_grad()
def recalibrate_batchnorm(model: AdaptiveJSCC, batches, snr_range: tuple[float, float],
                          rng: np.random.Generator, device: torch.device,
                          layout=torch.contiguous_format) -> int:
    """Set every BatchNorm layer's running mean and variance to the plain average over
    ``batches`` (an iterable of (B, 3, s, s) float32 arrays), each coded at random SNRs in
    ``snr_range`` (dB) and random levels, all drawn from ``rng``; restores the layers'
    momentum and the model's train/eval modes. Returns the number of batches used."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    modes = {m: m.training for m in model.modules()}
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    noise = torch.Generator(device).manual_seed(int(rng.integers(2**31)))
    used = 0
    for batch in batches:
        x = torch.from_numpy(batch).to(device, memory_format=layout)
        n = x.shape[0]
        snr = torch.from_numpy(rng.uniform(*snr_range, n).astype(np.float32)).to(device)
        level = torch.from_numpy(rng.integers(0, model.cfg.levels, n)).to(device)
        model(x, snr, level=level, generator=noise)
        used += 1
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    for m, mode in modes.items():
        m.training = mode
    return used


class Trainer:
    """A resumable training run writing into ``out`` (data-parallel under torchrun)."""

    def __init__(self, cfg: TrainConfig, out: str | Path, device: str = "cpu",
                 precision: str = "fp32"):
        self.cfg = cfg
        self.precision = resolve_precision(precision, device)
        self.out = Path(out)
        self.rank, self.world = init_distributed(device)
        if device.startswith("cuda") and self.world > 1:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        self.device = torch.device(device)
        self.model_cfg: JSCCConfig = get_config(cfg.model)
        torch.manual_seed(cfg.seed)  # same initial weights on every rank
        self.model = AdaptiveJSCC(self.model_cfg).to(self.device)
        self.layout = (torch.channels_last if self.device.type == "cpu"
                       else torch.contiguous_format)
        self.model.to(memory_format=self.layout)
        self.ema = self._ema_copy()
        self.forward = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            # the policy is unused in the warm-up, the encoder while frozen
            self.forward = DistributedDataParallel(self.model, find_unused_parameters=True)
        self.opt = make_optimizer(self.model, cfg.lr)
        self.epoch = 0
        self.log: list[dict] = []
        self.rng = np.random.default_rng(cfg.seed)

    def _ema_copy(self) -> AdaptiveJSCC:
        """A frozen copy of the model that holds the moving average of its weights."""
        ema = copy.deepcopy(self.model).eval()
        for p in ema.parameters():
            p.requires_grad_(False)
        return ema

    def _autocast(self) -> torch.autocast:
        """The autocast context of the run's forward passes (bf16 or none)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.precision == "bf16")

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema = list(self.ema.parameters())
        torch._foreach_lerp_(ema, [p.detach() for p in self.model.parameters()], 1 - EMA_DECAY)

    # --- checkpoints -----------------------------------------------------------------------

    def resume(self) -> bool:
        """Load ``out/last.pt`` when it exists; returns whether it did."""
        path = self.out / CHECKPOINT
        if not path.exists():
            return False
        ckpt = torch.load(path, map_location=self.device, weights_only=False)
        # settings added since the checkpoint was written take their defaults
        saved, given = {**asdict(TrainConfig()), **ckpt["train_config"]}, asdict(self.cfg)
        if saved != given:
            diff = {k: (v, given.get(k)) for k, v in saved.items() if given.get(k) != v}
            raise ValueError(f"{path} was made with other settings {diff} (saved, given): "
                             "rerun with the same options or use another --out")
        self.model.load_state_dict(ckpt["model"])
        self.ema.load_state_dict(weights(ckpt))  # runs from before the average: the weights
        self.opt.load_state_dict(ckpt["optimizer"])
        self.epoch = ckpt["epoch"]
        self.rng.bit_generator.state = ckpt["numpy_rng"]
        torch.set_rng_state(ckpt["torch_rng"])
        log_path = self.out / LOG
        if log_path.exists():
            self.log = [r for r in json.loads(log_path.read_text())["epochs"]
                        if r["epoch"] <= self.epoch]
        return True

    def start_from(self, checkpoint: str | Path) -> str:
        """Copy the model weights (not the optimizer) of another run's checkpoint, or of an
        exported weights file (``save_weights``; fp16 weights are taken as fp32): as they
        are for the same model, widened function-preservingly (:mod:`jscc.widen`) for a
        model with a whole multiple of its widths. Returns what was done, for the log."""
        narrow = load_model(checkpoint)
        state, done = narrow.state_dict(), f"starting from the weights of {checkpoint}"
        if narrow.cfg != self.model_cfg:
            try:
                state = widen_model(narrow, self.model_cfg, seed=self.cfg.seed).state_dict()
            except ValueError as exc:
                raise ValueError(f"{checkpoint} holds model {narrow.cfg.to_dict()}, this run "
                                 f"trains {self.model_cfg.to_dict()}: {exc}") from None
            done += f", widened {narrow.cfg.widths} -> {self.model_cfg.widths}"
        self.model.load_state_dict(state)
        self.ema.load_state_dict(state)
        return done

    def save(self) -> None:
        """Write last.pt and log.json atomically (rank 0 only)."""
        if self.rank:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        _atomic_save({
            "format": 1,
            "model_config": self.model_cfg.to_dict(),
            "train_config": asdict(self.cfg),
            "world_size": self.world,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.opt.state_dict(),
            "numpy_rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }, self.out / CHECKPOINT)
        _atomic_json({"model_config": self.model_cfg.to_dict(), "train_config": asdict(self.cfg),
                      "world_size": self.world, "epochs": self.log}, self.out / LOG)

    # --- training ------------------------------------------------------------------------

    def run_epoch(self, sampler: CropSampler | MixedSampler,
                  progress: bool = True) -> EpochStats:
        """Train one epoch, append its stats to the log, checkpoint, return the stats."""
        from tqdm import tqdm

        cfg, e = self.cfg, self.epoch
        lr, tau, frozen = cfg.lr_at(e), cfg.temperature_at(e), cfg.frozen_at(e)
        warm = cfg.warmup_at(e)
        random_share = 1.0 if warm else cfg.random_level_frac
        levels = self.model_cfg.levels
        for group in self.opt.param_groups:
            group["lr"] = lr
        if self.world > 1:
            self.rng = np.random.default_rng([cfg.seed, self.rank, e])
        self.model.train()
        set_frozen(self.model, frozen)
        steps = sampler.steps_per_epoch(cfg.batch_size)
        if cfg.steps_per_epoch:
            steps = min(steps, cfg.steps_per_epoch)
        steps = max(1, steps // self.world)
        sums = dict(loss=0.0, mse=0.0, psnr=0.0, rate=0.0)
        by_snr = {True: [0.0, 0], False: [0.0, 0]}
        mid = (cfg.snr_min + cfg.snr_max) / 2
        start, cpu_start = time.perf_counter(), time.process_time()
        bar = tqdm(total=steps, desc=f"epoch {e + 1}/{cfg.epochs}",
                   disable=not progress or self.rank > 0,
                   mininterval=0.5 if sys.stderr.isatty() else 30.0, file=sys.stderr)
        batches = sampler.batches(cfg.batch_size, self.rng)
        for _ in range(steps):
            x = torch.from_numpy(next(batches)).to(self.device, memory_format=self.layout)
            u = torch.from_numpy(self.rng.random(x.shape[0]).astype(np.float32))
            snr = (cfg.snr_min + (cfg.snr_max - cfg.snr_min) * u).to(self.device)
            forced = self.rng.random(x.shape[0]) < random_share
            lv = np.where(forced, self.rng.integers(0, levels, x.shape[0]), -1)
            with self._autocast():
                out = self.forward(x, snr, level=torch.from_numpy(lv).to(self.device),
                                   temperature=tau)
            per_image = ((out.x_hat.float() - x) ** 2).mean(dim=(1, 2, 3))
            mse = per_image.mean()
            loss = distortion(per_image, cfg.distortion)
            if not warm:
                selectable = out.group_mask[:, self.model_cfg.always_on_groups:]
                loss = loss + cfg.rate_weight * selectable.mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self._update_ema()
            sums["loss"] += loss.item()
            sums["mse"] += mse.item()
            sums["psnr"] += (-10 * torch.log10(per_image.detach().clamp_min(1e-10))).mean().item()
            # rate statistics describe the policy's choices (all items in the warm-up)
            chosen = torch.from_numpy(~forced if (~forced).any() else np.ones_like(forced))
            chosen = chosen.to(self.device)
            sums["rate"] += out.rate[chosen].mean().item()
            low = snr < mid
            for flag in (True, False):
                sel = out.rate[(low == flag) & chosen]
                by_snr[flag][0] += sel.sum().item()
                by_snr[flag][1] += sel.numel()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.5f}", rate=f"{out.rate.mean().item():.4f}",
                            refresh=False)
        bar.close()
        for model in (self.model, self.ema):
            recal_rng = np.random.default_rng([cfg.seed, e, 1])
            recal = itertools.islice(sampler.batches(cfg.batch_size, recal_rng),
                                     RECALIBRATION_BATCHES)
            with self._autocast():
                bn_batches = recalibrate_batchnorm(model, recal, (cfg.snr_min, cfg.snr_max),
                                                   recal_rng, self.device, self.layout)
        n = max(steps, 1)
        self.epoch += 1
        stats = EpochStats(
            epoch=self.epoch, loss=sums["loss"] / n, mse=sums["mse"] / n, psnr=sums["psnr"] / n,
            rate=sums["rate"] / n,
            rate_low_snr=by_snr[True][0] / max(by_snr[True][1], 1),
            rate_high_snr=by_snr[False][0] / max(by_snr[False][1], 1),
            warmup=warm, lr=lr, temperature=tau, frozen=frozen, steps=steps,
            seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu_start,
            precision=self.precision, bn_batches=bn_batches, ema_decay=EMA_DECAY,
        )
        self.log.append(asdict(stats))
        self.save()
        return stats

    def fit(self, sampler: CropSampler | MixedSampler, progress: bool = True,
            cpu_budget_s: float | None = None) -> list[dict]:
        """Train from the current epoch to ``cfg.epochs``; returns the whole log.

        cpu_budget_s: stop once the run's epochs (resumed ones included) have used this
        much process CPU time, all threads (for equal-budget comparisons).
        """
        while self.epoch < self.cfg.epochs:
            used = sum(r.get("cpu_seconds", 0.0) for r in self.log)
            if cpu_budget_s is not None and used >= cpu_budget_s:
                break
            stats = self.run_epoch(sampler, progress)
            if self.rank == 0:
                print(json.dumps(asdict(stats)), flush=True)
        return self.log


def make_sampler(cfg: TrainConfig, data: str | Path, photos: str | Path | None = None,
                 cache_dir: str | Path | None = "runs/cache") -> MixedSampler:
    """Training batches: ``cfg.crop`` crops of ``data``, mixed with crops of ``photos``
    (a folder or zip of large photos) on a ``cfg.photo_share`` of the steps, and/or with
    crop-size photo patches (zoom 0.25-1) as a ``cfg.photo_patches`` share of every batch."""
    small = CropSampler(load_images(data, cache_dir), cfg.crop)
    if small.steps_per_epoch(cfg.batch_size) == 0:
        raise ValueError(f"{data} holds {len(small)} images, fewer than one batch of "
                         f"{cfg.batch_size}: lower --batch-size")
    if (cfg.photo_share or cfg.photo_patches) and photos is None:
        raise ValueError("a photo share above 0 needs --photos (a folder or zip of photos)")
    big = patches = None
    if photos is not None and (cfg.photo_share or cfg.photo_patches):
        images = list(load_images(photos))
        pixels = cfg.batch_size * cfg.crop * cfg.crop
        if cfg.photo_share:
            big = PhotoCropSampler(images, pixels=pixels)
        if cfg.photo_patches:
            patches = PhotoCropSampler(images, pixels=pixels, sides=(cfg.crop,),
                                       zoom=(0.25, 1.0))
    return MixedSampler(small, big, cfg.photo_share, patches, cfg.photo_patches)


def train(cfg: TrainConfig, data: str | Path, out: str | Path, device: str = "cpu",
          cache_dir: str | Path | None = "runs/cache", progress: bool = True,
          photos: str | Path | None = None, precision: str = "fp32") -> Trainer:
    """Load the data, resume from ``out/last.pt`` if present (else start from the weights of
    ``cfg.init`` when given), train to ``cfg.epochs`` in ``precision`` (see
    :func:`resolve_precision`)."""
    trainer = Trainer(cfg, out, device, precision)
    if trainer.resume():
        print(f"resuming from {Path(out) / CHECKPOINT} after epoch {trainer.epoch}", flush=True)
    elif cfg.init:
        print(trainer.start_from(cfg.init), flush=True)
    if trainer.epoch >= cfg.epochs:
        return trainer
    trainer.fit(make_sampler(cfg, data, photos, cache_dir), progress)
    return trainer
