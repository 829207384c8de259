"""``semstream jscc ...``: train the JSCC model and export shipped weights.

``semstream jscc eval`` comes from :mod:`jscc.eval_cli` when that module exists.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from jscc.device_option import add_device_option


def register(sub) -> None:
    """Add the ``jscc`` command group (train, export, and eval when available)."""
    parser = sub.add_parser("jscc", help="deep JSCC model: train, export weights, evaluate")
    jsub = parser.add_subparsers(dest="jscc_command", required=True, metavar="SUBCOMMAND")

    t = jsub.add_parser("train", help="train (or resume) the adaptive-rate JSCC model",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--data", required=True, help="folder or zip of training images")
    t.add_argument("--photos", default=None,
                   help="folder or zip of large photos whose crops are mixed in")
    t.add_argument("--photo-share", type=float, default=0.0,
                   help="share of the steps that train on photo crops (needs --photos)")
    t.add_argument("--photo-patches", type=float, default=0.0,
                   help="share of every batch replaced by --crop-size patches of the photos "
                        "(zoom 0.25-1; needs --photos)")
    t.add_argument("--config", default="edge",
                   help="model preset (edge | wide | paper | edge-gdn | x8 | x8-gdn)")
    t.add_argument("--epochs", type=int, default=80)
    t.add_argument("--out", required=True, help="folder for last.pt and log.json (resumes)")
    add_device_option(t)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--crop", type=int, default=32, help="square training crop side, pixels")
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--rate-weight", type=float, default=8e-4,
                   help="lambda on the fraction of selectable groups sent (in MSE units, or "
                        "dB with --distortion psnr)")
    t.add_argument("--distortion", choices=("mse", "psnr"), default="mse",
                   help="mse: mean MSE (as published); psnr: mean per-image PSNR, every "
                        "training SNR weighted alike")
    t.add_argument("--snr", default="0,20", help="training SNR range MIN,MAX in dB")
    t.add_argument("--init", default="",
                   help="start a new run from the weights of this training checkpoint or "
                        "exported weights file (of the same preset, or of one whose widths "
                        "it multiplies: widened so that it starts out computing the same)")
    t.add_argument("--warmup-frac", type=float, default=0.1,
                   help="share of the epochs at random levels before the policy trains")
    t.add_argument("--lr-drop-frac", type=float, default=0.375,
                   help="share of the epochs before the learning rate drops tenfold")
    t.add_argument("--freeze-frac", type=float, default=0.75,
                   help="share of the epochs before encoder and policy freeze")
    t.add_argument("--random-level-frac", type=float, default=0.25,
                   help="after the warm-up: share of each batch sent at a random level, so "
                        "that every selectable group keeps training while the policy learns")
    t.add_argument("--steps-per-epoch", type=int, default=0, help="cap per epoch (0 = all)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    t.add_argument("--cache", default="runs/cache", help="folder for the decoded-image cache")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    t.set_defaults(func=_train)

    f = jsub.add_parser("fit-policy", help="refit a trained model's rate policy alone "
                        "(encoder and decoder frozen, exact expected cost of every level)")
    f.add_argument("--checkpoint", required=True, help="training checkpoint (last.pt) to refit")
    f.add_argument("--data", required=True, help="folder or zip of training images")
    f.add_argument("--photos", default=None, help="folder or zip of photos for --photo-patches")
    f.add_argument("--photo-patches", type=float, default=0.0,
                   help="share of every batch replaced by photo patches (needs --photos)")
    f.add_argument("--photo-share", type=float, default=0.0,
                   help="share of the steps on 96-256 px photo crops (needs --photos)")
    f.add_argument("--batchnorm", choices=("batch", "frozen"), default="batch",
                   help="the policy's BatchNorm: batch statistics, or the running ones the "
                        "joint training left (for --photo-share's few-crop batches)")
    f.add_argument("--out", required=True, help="folder for the refitted last.pt and log.json")
    f.add_argument("--rate-weight", type=float, default=6e-4,
                   help="cost of sending every selectable group, in the distortion's unit")
    f.add_argument("--distortion", choices=("mse", "psnr"), default="mse",
                   help="per-image MSE, or minus per-image PSNR in dB")
    f.add_argument("--rate-price", choices=("flat", "capacity"), default="flat",
                   help="flat, or capacity: the rate weight times log2(1 + SNR), a channel "
                        "use priced at the bits it could carry")
    f.add_argument("--epochs", type=int, default=6)
    f.add_argument("--steps-per-epoch", type=int, default=200)
    f.add_argument("--batch-size", type=int, default=128)
    f.add_argument("--lr", type=float, default=1e-3)
    f.add_argument("--snr", default="-5,20", help="training SNR range MIN,MAX in dB")
    f.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="bf16 autocast where the CPU computes it natively (auto), or as given")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    f.add_argument("--cache", default="runs/cache", help="folder for the decoded-image cache")
    f.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    f.set_defaults(func=_fit_policy)

    x = jsub.add_parser("export", help="export a training checkpoint as shipped weights")
    x.add_argument("--checkpoint", default="checkpoints/jscc-edge/last.pt")
    x.add_argument("--out", default=None,
                   help="weights file (default: jscc/weights/<config>.pt in the package)")
    x.add_argument("--fp32", action="store_true", help="keep fp32 (default stores fp16)")
    x.add_argument("--card", default=None,
                   help="model card to write (default: MODEL_CARD-<preset>.md beside the weights)")
    x.add_argument("--eval", action="append", default=[], metavar="JSON",
                   help="`semstream jscc eval` result to tabulate in the card (repeatable)")
    x.set_defaults(func=_export)

    try:
        eval_cli = importlib.import_module("jscc.eval_cli")
    except ModuleNotFoundError as exc:
        if exc.name != "jscc.eval_cli":
            raise
    else:
        eval_cli.register(jsub)


def _parse_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--snr wants MIN,MAX in dB (e.g. 0,20), got {text!r}") from None
    return lo, hi


def _train(args) -> int:
    # Spinning OpenMP workers make a 2-thread step several times slower when other
    # processes share the cores; passive waiting costs nothing on an idle machine.
    # (Takes effect only when torch is not imported yet, as in the CLI.)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from jscc.device import describe, resolve_device
    from jscc.train import TrainConfig, resolve_precision, train

    torch.set_num_threads(args.threads)
    lo, hi = _parse_range(args.snr)
    cfg = TrainConfig(model=args.config, epochs=args.epochs, batch_size=args.batch_size,
                      crop=args.crop, lr=args.lr, rate_weight=args.rate_weight, snr_min=lo,
                      snr_max=hi, seed=args.seed, steps_per_epoch=args.steps_per_epoch,
                      photo_share=args.photo_share, photo_patches=args.photo_patches,
                      warmup_frac=args.warmup_frac,
                      lr_drop_frac=args.lr_drop_frac, freeze_frac=args.freeze_frac,
                      random_level_frac=args.random_level_frac,
                      distortion=args.distortion, init=args.init)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, str(device))
    print(f"semstream jscc train: {describe(device)}, {precision}", flush=True)
    trainer = train(cfg, args.data, args.out, device=str(device), cache_dir=args.cache,
                    progress=not args.no_progress, photos=args.photos, precision=precision)
    print(f"trained {trainer.epoch}/{cfg.epochs} epochs; checkpoint in {args.out}")
    return 0


def _fit_policy(args) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as in _train
    import torch

    from jscc.policy_fit import PolicyFitConfig, refit_checkpoint
    from jscc.train import resolve_precision

    torch.set_num_threads(args.threads)
    lo, hi = _parse_range(args.snr)
    cfg = PolicyFitConfig(rate_weight=args.rate_weight, distortion=args.distortion,
                          rate_price=args.rate_price,
                          epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                          batch_size=args.batch_size, lr=args.lr, snr_min=lo, snr_max=hi,
                          photo_patches=args.photo_patches, photo_share=args.photo_share,
                          batchnorm=args.batchnorm, seed=args.seed)
    path = refit_checkpoint(args.checkpoint, args.out, cfg, args.data, args.photos,
                            args.cache, not args.no_progress,
                            resolve_precision(args.precision, "cpu"),
                            command="semstream " + " ".join(sys.argv[1:]))
    print(f"wrote {path}")
    return 0


def _export(args) -> int:
    from jscc.export import export_checkpoint

    path = export_checkpoint(args.checkpoint, args.out, half=not args.fp32, card=args.card,
                             evals=args.eval)
    print(f"wrote {path}")
    return 0
