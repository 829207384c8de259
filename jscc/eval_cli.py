"""``semstream jscc eval``: PSNR/SSIM/rate of the JSCC model per SNR, and the separation baseline.

Example: ``semstream jscc eval --data ../shared/data/cifar10-test.zip --snr 0,5,10,15,20
--baseline separation --json docs/results/jscc/cifar10-edge.json``.
"""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path

from jscc import DEFAULT_MODEL
from jscc.device_option import add_device_option

MODEL_NONE = "none"


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--snr wants comma-separated dB values (e.g. 0,5,10), got {text!r}")\
            from None
    if not values:
        raise ValueError("--snr is empty: give e.g. 0,5,10,15,20")
    return values


def _size(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size wants LONGxSHORT pixels (e.g. 768x512), got {text!r}")\
            from None
    if min(a, b) < 1:
        raise ValueError(f"--size must be positive, got {text!r}")
    return max(a, b), min(a, b)


def register(jsub) -> None:
    """Add ``eval`` to the ``jscc`` subcommands."""
    e = jsub.add_parser("eval", help="evaluate the JSCC model and/or the separation baseline",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    e.add_argument("--data", required=True, help="folder or zip of test images")
    e.add_argument("--snr", default="0,5,10,15,20",
                   help="SNRs in dB, comma-separated (write --snr=-5,0,5 when one leads with -)")
    e.add_argument("--channel", choices=("awgn", "rayleigh"), default="awgn")
    e.add_argument("--block-size", type=int, default=64,
                   help="channel uses per Rayleigh fading block")
    e.add_argument("--model", default=DEFAULT_MODEL,
                   help="shipped weights name (wide | edge | paper), a weights file, or 'none' for "
                        "the baseline alone")
    e.add_argument("--level", type=int, default=None,
                   help="force rate level K (fixed-rate mode); default: the policy picks")
    e.add_argument("--baseline", choices=("separation",), default=None,
                   help="also code the images with JPEG/WebP/HEVC-intra over an ideal code")
    e.add_argument("--budget", choices=("capacity", "mcs"), default="capacity",
                   help="baseline bit budget: capacity k*log2(1+SNR) or an LTE-like MCS table")
    e.add_argument("--codecs", default="jpeg,webp,hevc,hevc444",
                   help="baseline codecs, comma-separated")
    e.add_argument("--count", choices=("all", "payload"), default="all",
                   help="baseline bits charged per image: every byte of the file, or the "
                        "per-image payload with once-per-session headers left out")
    e.add_argument("--rho", default="1/6",
                   help="baseline channel uses per source value when run without a model")
    e.add_argument("--limit", type=int, default=1000,
                   help="evaluate an evenly spread subset of N images (0 = all)")
    e.add_argument("--size", type=_size, default=None,
                   help="cover-resize and centre-crop every image to LONGxSHORT (e.g. 768x512)")
    e.add_argument("--seed", type=int, default=0, help="seed of the channel noise / fading")
    add_device_option(e)
    e.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    e.add_argument("--cache", default="runs/cache", help="folder for the decoded-image cache")
    e.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    e.add_argument("--json", dest="json_out", default=None, help="write the report here")
    e.set_defaults(func=_eval)


def _load_model(spec: str, device: str = "cpu", precision: str = "auto"):
    """(model or None, description) for --model: a shipped name, a weights file or none;
    its convolution stages run under ``precision`` as :class:`jscc.codec.JSCCCodec` runs
    them."""
    if spec == MODEL_NONE:
        return None, {"name": MODEL_NONE}
    import torch

    from jscc.codec import AUTOCAST_STAGES
    from jscc.device import autocast_children, autocast_dtype, jscc_precision
    from jscc.export import default_weights_path
    from jscc.layers import fold_batchnorm
    from jscc.model import CONFIGS, load_weights

    if spec in CONFIGS:
        path, expect = default_weights_path(spec), spec
    elif spec.endswith(".pt") or Path(spec).exists():
        path, expect = Path(spec), None
    else:
        raise ValueError(f"--model {spec!r} is neither a shipped model ({', '.join(CONFIGS)}), "
                         f"a weights file nor 'none'")
    model, meta = load_weights(path, expect=expect, device=device)
    dev = torch.device(device)
    arithmetic = jscc_precision(dev, precision)
    info = {"name": spec, "weights": str(path), "config": model.cfg.to_dict(),
            "epoch": meta.get("epoch"), "precision": arithmetic}
    model = fold_batchnorm(model).eval()
    return autocast_children(model, AUTOCAST_STAGES, autocast_dtype(dev, arithmetic),
                             dev.type), info


def _eval(args) -> int:
    import torch

    from jscc.channel import ChannelConfig
    from jscc.digital.separation import SeparationConfig
    from jscc.evaluate import EvalConfig, evaluate, json_safe, load_eval_images

    torch.set_num_threads(max(1, min(args.threads, 2)))
    try:
        rho = float(Fraction(args.rho))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"--rho wants a number or a fraction like 1/6, got {args.rho!r}")\
            from None
    config = EvalConfig(snrs=_floats(args.snr),
                        channel=ChannelConfig(args.channel, block_size=args.block_size),
                        level=args.level, seed=args.seed, rho=rho)
    baseline = None
    if args.baseline == "separation":
        baseline = SeparationConfig(rule=args.budget,
                                    codecs=tuple(c for c in args.codecs.split(",") if c),
                                    counting=args.count)
    from jscc.device import describe, resolve_device

    device = resolve_device(args.device)
    model, model_info = _load_model(args.model, str(device), args.precision)
    if model is not None:
        print(describe(device))
        model_info["device"] = str(device)
    model_info["level"] = "policy" if args.level is None else args.level
    images, data_info = load_eval_images(args.data, args.limit or None, args.size, args.cache)
    body = evaluate(images, config, model, baseline, progress=not args.no_progress)
    report = {"model": model_info, "data": data_info, **body}
    _print_table(report)
    if args.json_out:
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(json_safe(report), indent=1, allow_nan=False) + "\n")
        print(f"report written to {out}")
    return 0


def _print_table(report: dict) -> None:
    """One line per SNR: model PSNR/SSIM/rate and the baseline's best PSNR."""
    model = {r["snr"]: r for r in report.get("results", [])}
    base = {r["snr"]: r for r in report.get("baseline", {}).get("results", [])}
    print(f"{'SNR dB':>7} {'JSCC PSNR':>10} {'SSIM':>6} {'rate':>7} {'sep. PSNR':>10} {'lost':>5}")
    for snr in report["snrs"]:
        m, b = model.get(snr), base.get(snr)
        left = f"{m['psnr']:10.2f} {m['ssim']:6.3f} {m['rate']:7.4f}" if m else f"{'-':>25}"
        right = f"{b['best']['psnr']:10.2f} {b['best']['lost']:5.2f}" if b else ""
        print(f"{snr:7g} {left} {right}")
