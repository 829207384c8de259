"""Export a training checkpoint as shipped weights plus a generated model card.

The weights file holds the model config, an fp16 (default) state dict and metadata
(epochs, training settings, wall time, command); the card is written from the same
facts and from evaluation JSON files of ``semstream jscc eval`` when given.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import torch

from jscc.model import (
    AdaptiveJSCC,
    JSCCConfig,
    check_state_dict,
    is_weights_blob,
    parameter_count,
    save_weights,
    weights_from_blob,
)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def default_weights_path(name: str) -> Path:
    """Shipped weights of preset ``name``: jscc/weights/<name>.pt inside the package."""
    return WEIGHTS_DIR / f"{name}.pt"


def _read_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found: run `semstream jscc train` first")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_config" not in ckpt:
        raise ValueError(f"{path} is not a training checkpoint of `semstream jscc train`")
    return ckpt


def weights(ckpt: dict) -> dict:
    """The state dict a training checkpoint stands for: its moving average of the weights
    where it keeps one, else its trained weights."""
    return ckpt.get("ema") or ckpt["model"]


def _checkpoint_model(ckpt: dict, source: str) -> AdaptiveJSCC:
    """Eval-mode model of a training checkpoint's dict (its :func:`weights`)."""
    model = AdaptiveJSCC(JSCCConfig.from_dict(ckpt["model_config"]))
    state = weights(ckpt)
    check_state_dict(model, state, source)
    model.load_state_dict(state)
    return model.eval()


def load_checkpoint_model(checkpoint: str | Path) -> tuple[AdaptiveJSCC, dict]:
    """(eval-mode model, checkpoint dict) from a training checkpoint ``last.pt``: the
    moving average of the weights where the run kept one (:func:`weights`)."""
    ckpt = _read_checkpoint(Path(checkpoint))
    return _checkpoint_model(ckpt, str(checkpoint)), ckpt


def load_model(path: str | Path) -> AdaptiveJSCC:
    """Eval-mode fp32 model from either a training checkpoint (its :func:`weights`) or an
    exported weights file (``save_weights``), read once."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"JSCC model file {path} not found")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if is_weights_blob(blob):
        return weights_from_blob(blob, path)[0]
    if isinstance(blob, dict) and "model" in blob and "model_config" in blob:
        return _checkpoint_model(blob, str(path))
    raise ValueError(f"{path} holds no model config: neither a training checkpoint nor "
                     "exported weights")


def _describe(value, keys: tuple[str, ...]) -> str:
    """Short text of an eval report field: a plain value, or chosen keys of a dict."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {value[k]}" for k in keys if k in value)
    return str(value)


def _eval_table(path: Path) -> str:
    """Markdown table of one `semstream jscc eval` JSON file."""
    report = json.loads(path.read_text())
    head = "; ".join(
        f"{field}: {_describe(report[field], keys)}"
        for field, keys in (("model", ("name", "epoch", "level")), ("data", ("path", "images")),
                            ("channel", ("kind",)))
        if field in report)
    rows = [f"Evaluation `{path.name}` ({head}):", "",
            "| SNR dB | PSNR dB | SSIM | rate (channel uses / source value) |",
            "|---|---|---|---|"]
    for r in report["results"]:
        rows.append(f"| {r['snr']:g} | {r['psnr']:.2f} | {r.get('ssim', float('nan')):.3f} | "
                    f"{r['rate']:.4f} |")
    return "\n".join(rows)


def _policy_fit_lines(fit: dict | None) -> list[str]:
    """The card's line on a policy refit (:mod:`jscc.policy_fit`), if the weights had one."""
    if not fit:
        return []
    c, log = fit["config"], fit["log"]
    unit = "dB" if c["distortion"] == "psnr" else "MSE"
    minutes = sum(r["seconds"] for r in log) / 60
    return [f"- Rate policy refitted afterwards from `{fit['from']}` (`jscc/policy_fit.py`): "
            "encoder and decoder frozen, the policy trained on the exact expected cost of "
            f"every level ({c['distortion']} + {c['rate_weight']:g} {unit}"
            + (" x log2(1 + SNR)" if c.get("rate_price") == "capacity" else "")
            + " x fraction of the selectable groups sent), "
            f"{c['epochs']} epochs of {c['steps_per_epoch']} batches "
            f"of {c['batch_size']}, SNR uniform in [{c['snr_min']:g}, {c['snr_max']:g}] dB, "
            f"photo-patch share {c['photo_patches']:g}, photo-crop share "
            f"{c.get('photo_share', 0):g}, policy BatchNorm {c.get('batchnorm', 'batch')}, "
            f"{minutes:.1f} min; last epoch's "
            f"selectable share sent {log[-1]['rate_low_snr']:.2f} below / "
            f"{log[-1]['rate_high_snr']:.2f} above the middle SNR. Command: "
            f"`{fit['command']}`"]


def model_card(cfg: JSCCConfig, meta: dict, evals: list[Path]) -> str:
    """Markdown model card from the export metadata and optional eval JSON files."""
    tc = meta["train_config"]
    log = meta["log"]
    hours = sum(r["seconds"] for r in log) / 3600
    counts = Counter(r.get("precision", "fp32") for r in log)
    precisions = ", ".join(f"{k} for {n} epochs" for k, n in counts.items()) or "fp32"
    drop = round(tc["lr_drop_frac"] * tc["epochs"])
    freeze = round(tc["freeze_frac"] * tc["epochs"])
    warm = round(tc["warmup_frac"] * tc["epochs"])
    per_group = tc["rate_weight"] / (cfg.groups - cfg.always_on_groups)
    # the loss's distortion term and its unit (runs from before the option used MSE)
    distortion, unit = (("-(mean per-image PSNR, dB)", "dB") if tc.get("distortion") == "psnr"
                        else ("MSE", "MSE"))
    lines = [
        f"# JSCC model `{cfg.name}`",
        "",
        "SNR- and rate-adaptive deep JSCC (Yang & Kim, ICASSP 2022) as described in "
        "`../shared/DESIGN.md`, with encoder widths "
        f"{cfg.widths} (the paper: (64, 128, 256)), latent at 1/{cfg.downsample} of the image "
        f"side with {cfg.latent_channels} real channels in {cfg.groups} rate groups, "
        + ("BatchNorm + ReLU as published" if cfg.norm == "bn" else
           "GDN/IGDN after the strided convolutions and PReLU residual blocks instead of "
           "BatchNorm + ReLU")
        + f"; {meta['parameters']:,} parameters; stored {meta['dtype']}.",
        "",
        "- Data: CIFAR-10 training set, the JPEG q75 copy in `../shared/data/cifar10-train.zip` "
        "(slightly smoother than the original CIFAR-10, so PSNR on it runs a little higher)"
        + ("." if not tc.get("photo_share") else
           f"; on a share of {tc['photo_share']:g} of the steps, crops of 96-256 px (zoom "
           "0.35-1) of the 234 photos of `../shared/data/photos-debian.zip`, as many per "
           "batch as make the same pixel count. The 49 photos of `photos-train.zip` are "
           "never trained on: they are the held-out large-image set.")
        + ("" if not tc.get("photo_patches") else
           f" A share of {tc['photo_patches']:g} of every batch is {tc['crop']}x{tc['crop']} "
           "patches of those photos (zoom 0.25-1) instead.")
        + (f" Started from the weights of `{tc['init']}` (widened function-preservingly "
           "where that model is narrower, `jscc/widen.py`)." if tc.get("init") else ""),
        f"- Training: {meta['epoch']} of {tc['epochs']} planned epochs, batch {tc['batch_size']}, "
        f"{tc['crop']}x{tc['crop']} crops with flips, SNR uniform in "
        f"[{tc['snr_min']:g}, {tc['snr_max']:g}] dB per image, AWGN, Adam(0.5, 0.999) lr "
        f"{tc['lr']:g} then {tc['lr_low']:g} after epoch {drop}, encoder and policy frozen after "
        f"epoch {freeze}, Gumbel "
        f"temperature {tc['temperature0']:g} x exp(-{tc['temperature_decay']:g} x 400/"
        f"{tc['epochs']} x epoch), loss {distortion} + {tc['rate_weight']:g} x "
        "(fraction of the 4 "
        f"selectable groups sent); the first {warm} epochs send every image at a random "
        "level without the rate term (warm-up), later a share of "
        f"{tc['random_level_frac']:g} of each batch keeps a random level.",
        "- Why these choices: the rate term is the fraction of selectable groups sent, and its "
        "weight was set so that one group (1/48 channel uses per source value at 32x32) is "
        f"worth about {per_group:.3g} {unit}: worth sending at low SNR, not "
        "at high SNR. Without "
        "the warm-up the policy settled on levels 0-1 within two epochs while the decoder had "
        "not learnt to use the other groups (fixed level 4 scored no better than level 0). "
        "Speed of each preset: `docs/results/jscc/bench.json`.",
        *_policy_fit_lines(meta.get("policy_fit")),
        f"- Where: this project's shared 2-core CPU machine, no GPU; {hours:.2f} h of wall "
        f"time in all, torch threads 2, arithmetic {precisions}.",
        f"- Command: `{meta.get('command', '?')}`",
        f"- Exported {meta['exported']} from `{meta['checkpoint']}`.",
        "",
        "Training log (every few epochs; PSNR on training batches at random SNR):",
        "",
        "| epoch | loss | train PSNR dB | mean rate | rate SNR<10 | rate SNR>=10 | lr | temp |",
        "|---|---|---|---|---|---|---|---|",
    ]
    step = max(1, len(log) // 12)
    for r in log[::step] + ([log[-1]] if (len(log) - 1) % step else []):
        lines.append(f"| {r['epoch']} | {r['loss']:.5f} | {r['psnr']:.2f} | {r['rate']:.4f} | "
                     f"{r['rate_low_snr']:.4f} | {r['rate_high_snr']:.4f} | {r['lr']:g} | "
                     f"{r['temperature']:.3f} |")
    for path in evals:
        lines += ["", _eval_table(path)]
    if not evals:
        lines += ["", "No evaluation attached yet: run `semstream jscc eval` and re-export "
                  "with `--eval RESULT.json`."]
    return "\n".join(lines) + "\n"


def export_checkpoint(checkpoint: str | Path, out: str | Path | None = None, half: bool = True,
                      card: str | Path | None = None,
                      evals: list[str | Path] | None = None) -> Path:
    """Write shipped weights (and MODEL_CARD-<preset>.md beside them) from a training
    checkpoint."""
    checkpoint = Path(checkpoint)
    model, ckpt = load_checkpoint_model(checkpoint)
    cfg = model.cfg
    log_path = checkpoint.parent / "log.json"
    log = json.loads(log_path.read_text())["epochs"] if log_path.exists() else []
    command = checkpoint.parent / "COMMAND.txt"
    meta = {
        "epoch": ckpt["epoch"],
        "train_config": ckpt["train_config"],
        "log": [r for r in log if r["epoch"] <= ckpt["epoch"]],
        "parameters": parameter_count(model),
        "dtype": "fp16" if half else "fp32",
        "checkpoint": str(checkpoint),
        "exported": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": next((ln.strip() for ln in command.read_text().splitlines()
                         if ln.strip() and not ln.startswith("#")), "?")
        if command.exists() else "?",
    }
    if "policy_fit" in ckpt:
        meta["policy_fit"] = ckpt["policy_fit"]
    out = Path(out) if out else default_weights_path(cfg.name)
    save_weights(model, out, half=half, meta=meta)
    card_path = Path(card) if card else out.parent / f"MODEL_CARD-{cfg.name}.md"
    card_path.write_text(model_card(cfg, meta, [Path(p) for p in evals or []]))
    return out
