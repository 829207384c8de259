"""Evaluate the deep JSCC model over a set of images and SNRs, against separate coding.

For every SNR the model codes every image (its policy picks the rate, or a forced level
gives fixed-rate operation) through the channel; the report gives the mean PSNR and SSIM of
the decoded images and the mean rate in channel uses per source value actually sent. The
separation baseline (:mod:`jscc.digital.separation`) then codes the same images with, per image and
SNR, the same number of channel uses the model used (or ``rho`` uses per source value when
it runs alone).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from jscc.channel import ChannelConfig, channel_uses, source_values
from jscc.data import load_images
from jscc.digital.separation import SeparationConfig, separation_baseline
from jscc.metrics import QualityLog

DEFAULT_RHO = 1 / 6


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate: SNRs (dB), channel, forced level (None: the policy picks).

    batch_pixels caps the pixels per model batch (memory); seed fixes the channel noise.
    rho: channel uses per source value for the baseline when it runs without a model.
    """

    snrs: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    level: int | None = None
    batch_pixels: int = 1 << 20
    seed: int = 0
    rho: float = DEFAULT_RHO

    def __post_init__(self):
        if not self.snrs:
            raise ValueError("give at least one SNR")
        if not 0 < self.rho <= 1:
            raise ValueError(f"rho must be in (0, 1], got {self.rho}")


# --- images -----------------------------------------------------------------------------


def fit_size(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale to cover ``size`` = (long side, short side) pixels and centre-crop to it.

    A landscape image becomes long x short (W x H), a portrait one short x long, so that
    photos keep their orientation (as the Kodak set does). image: H x W x 3 uint8.
    """
    long_side, short_side = size
    h, w = image.shape[:2]
    out_w, out_h = (long_side, short_side) if w >= h else (short_side, long_side)
    scale = max(out_w / w, out_h / h)
    rw, rh = max(out_w, round(w * scale)), max(out_h, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, (rw, rh), interpolation=interp)
    y, x = (rh - out_h) // 2, (rw - out_w) // 2
    return np.ascontiguousarray(resized[y:y + out_h, x:x + out_w])


def subset_indices(total: int, limit: int | None) -> np.ndarray:
    """``limit`` indices spread evenly over ``total`` items (all of them when None)."""
    if limit is None or limit >= total:
        return np.arange(total)
    if limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    return np.floor(np.arange(limit) * (total / limit)).astype(int)


def load_eval_images(path: str | Path, limit: int | None = None,
                     size: tuple[int, int] | None = None,
                     cache_dir: str | Path | None = None) -> tuple[list[np.ndarray], dict]:
    """Images of a folder or zip (sorted by name), an evenly spread subset of ``limit``.

    size: optional (long, short) side in pixels for :func:`fit_size`. Returns the images
    (H x W x 3 uint8 RGB) and a description of the set for the report.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"evaluation data {path} does not exist: give a folder or a "
                                f"zip of images")
    images = load_images(path, cache_dir)
    idx = subset_indices(len(images), limit)
    chosen = [images[i] for i in idx]
    if size is not None:
        chosen = [fit_size(im, size) for im in chosen]
    shapes = sorted({im.shape[:2] for im in chosen})
    info = {"path": str(path), "images": len(chosen), "of": len(images),
            "subset": "all" if len(idx) == len(images)
            else f"{len(idx)} evenly spaced of {len(images)} sorted by name",
            "shapes": [list(s) for s in shapes[:5]] + (["..."] if len(shapes) > 5 else [])}
    if size is not None:
        info["fit"] = f"cover-resize and centre-crop to {size[0]}x{size[1]} (orientation kept)"
    return chosen, info


# --- the model --------------------------------------------------------------------------


def _batches(images: Sequence[np.ndarray], batch_pixels: int):
    """(indices, N x H x W x 3 stack) of equal-shape images, at most batch_pixels each."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, im in enumerate(images):
        by_shape.setdefault(im.shape, []).append(i)
    for shape, idx in by_shape.items():
        step = max(1, batch_pixels // (shape[0] * shape[1]))
        for start in range(0, len(idx), step):
            chunk = idx[start:start + step]
            yield chunk, np.stack([images[i] for i in chunk])


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    """N x H x W x 3 uint8 -> (N, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> N x H x W x 3 uint8 (rounded)."""
    return x.clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, images: Sequence[np.ndarray],
                   config: EvalConfig, progress: bool = False
                   ) -> tuple[list[dict], list[list[int]]]:
    """Run the model over every image at every SNR.

    Returns (results, uses): results[s] = {"snr", "psnr" (mean of per-image dB),
    "psnr_pooled", "ssim", "rate" (mean channel uses per source value sent),
    "channel_uses" (mean per image), "levels" (images per level 0..L-1)};
    uses[s][i] = complex channel uses image i took at snrs[s]. Runs on the model's device.
    """
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    results, uses = [], []
    for snr in tqdm(config.snrs, "JSCC model, per SNR", disable=not progress, leave=False):
        log, rates = QualityLog(), np.zeros(len(images))
        levels = np.zeros(model.cfg.levels, dtype=int)
        decoded: dict[int, np.ndarray] = {}
        for idx, batch in _batches(images, config.batch_pixels):
            out = model(to_tensor(batch).to(device),
                        torch.full((len(idx),), float(snr), device=device), config.channel,
                        level=config.level, generator=generator)
            decoded.update(zip(idx, to_uint8(out.x_hat.cpu()), strict=True))
            rates[idx] = out.rate.cpu().numpy()
            levels += np.bincount(out.level.cpu().numpy(), minlength=model.cfg.levels)
        for i, image in enumerate(images):
            log.add(image, decoded[i])
        n_values = np.array([source_values(*im.shape[:2]) for im in images])
        k = np.rint(rates * n_values).astype(int)
        s = log.summary()
        results.append({"snr": snr, "psnr": s["psnr_mean"], "psnr_pooled": s["psnr_pooled"],
                        "ssim": s["ssim_mean"], "rate": float(rates.mean()),
                        "channel_uses": float(k.mean()), "levels": levels.tolist()})
        uses.append(k.tolist())
    return results, uses


# --- the whole evaluation ---------------------------------------------------------------


def fixed_rho_uses(images: Sequence[np.ndarray], rho: float, n_snrs: int) -> list[list[int]]:
    """Channel uses per image at ``rho`` uses per source value, repeated for each SNR."""
    k = [channel_uses(source_values(*im.shape[:2]), rho) for im in images]
    return [k] * n_snrs


def evaluate(images: Sequence[np.ndarray], config: EvalConfig,
             model: torch.nn.Module | None = None,
             baseline: SeparationConfig | None = None, progress: bool = False) -> dict:
    """Evaluate the model and/or the separation baseline; returns the report's body.

    {"channel": {...}, "results": [...] (model, absent without one), "baseline": {...}
    (absent without one), "seconds": {...}}. With a model the baseline uses, per image and
    SNR, the channel uses the model took; alone it uses ``config.rho``. progress: show
    progress bars on stderr.
    """
    if model is None and baseline is None:
        raise ValueError("nothing to evaluate: give a model, a baseline or both")
    if not images:
        raise ValueError("no images to evaluate")
    report: dict = {"channel": asdict(config.channel), "snrs": list(config.snrs),
                    "seconds": {}}
    uses = None
    if model is not None:
        t0 = time.perf_counter()
        report["results"], uses = evaluate_model(model, images, config, progress)
        report["rate_note"] = ("rate counts the latent symbols sent; the rate level (one of "
                               f"{model.cfg.levels}) is side information not included")
        report["seconds"]["model"] = time.perf_counter() - t0
    if baseline is not None:
        t0 = time.perf_counter()
        if uses is None:
            uses = fixed_rho_uses(images, config.rho, len(config.snrs))
            how = f"rho = {config.rho:.6g} channel uses per source value"
        else:
            how = "per image and SNR, the channel uses the JSCC model took"
        report["baseline"] = {
            "method": "separation", "rule": baseline.rule, "codecs": list(baseline.codecs),
            "channel_uses": how,
            "counting": "every byte of each file" if baseline.counting == "all" else
                        "per-image payload: once-per-session headers (JPEG tables named by "
                        "1 quality byte, RIFF framing, HEVC VPS/SPS/PPS/SEI and start codes) "
                        "not charged",
            "note": "capacity rule: error-free capacity-achieving code, an upper bound for "
                    "real codes" if baseline.rule == "capacity" else
                    "mcs rule: LTE CQI table efficiencies, nothing below the lowest threshold",
            "results": separation_baseline(
                images, config.snrs, uses,
                replace(baseline, channel=config.channel, seed=config.seed), progress),
        }
        report["seconds"]["baseline"] = time.perf_counter() - t0
    return report


def json_safe(value):
    """Recursively replace non-finite floats (inf PSNR, NaN) by None for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value
