"""Equal-budget comparison of JSCC backbones: which model should the long run train?

Every candidate preset of ``jscc.model.CONFIGS`` trains from scratch for the same process
CPU time (``--budget`` seconds, all threads), on the same data (CIFAR-10 training crops mixed
with crops of large photos), SNR range and seed, at random rate levels throughout (so every
group is trained; the policy is left to the long run). Each is then scored on held-out
images at fixed levels 0 (1/12) and 4 (1/6), and timed encoding + decoding a 256 x 256 crop
through the codec. Runs resume: a candidate whose folder already holds its budget is only
evaluated. Prints a JSON report (``--json`` writes it) and ``--markdown`` writes the table.

    OMP_WAIT_POLICY=PASSIVE nice -n 10 .venv/bin/python bench/jscc_candidates.py \
        --json docs/results/jscc/candidates.json --markdown docs/results/jscc/candidates.md
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from jsonreport import emit  # noqa: E402

from jscc.codec import JSCCCodec  # noqa: E402
from jscc.evaluate import EvalConfig, evaluate_model, load_eval_images  # noqa: E402
from jscc.model import AdaptiveJSCC, get_config, parameter_count  # noqa: E402
from jscc.train import TrainConfig, Trainer, make_sampler  # noqa: E402

CANDIDATES = ("edge", "edge-gdn", "x8", "x8-gdn")


def speed_ms(model: AdaptiveJSCC, repeat: int = 15) -> float:
    """Median ms to encode + decode one 256 x 256 crop through the codec (2 threads)."""
    codec = JSCCCodec(model, threads=2)
    image = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    for _ in range(3):
        codec.decode(codec.encode(image, 10.0))
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        codec.decode(codec.encode(image, 10.0))
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def score(model: AdaptiveJSCC, sets: dict, snr: float) -> dict:
    """Mean PSNR (dB) per evaluation set at levels 0 and 4, and the gain between them."""
    out = {}
    for name, images in sets.items():
        psnr = {}
        for level in (0, model.cfg.levels - 1):
            res, _ = evaluate_model(model, images, EvalConfig(snrs=(snr,), level=level))
            psnr[level] = round(res[0]["psnr"], 2)
        out[name] = {"level0": psnr[0], "level4": psnr[model.cfg.levels - 1],
                     "gain": round(psnr[model.cfg.levels - 1] - psnr[0], 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--budget", type=float, default=1200.0, help="CPU seconds per candidate")
    ap.add_argument("--data", default="../shared/data/cifar10-train.zip")
    ap.add_argument("--photos", default="../shared/data/photos-debian.zip")
    ap.add_argument("--photo-share", type=float, default=0.3)
    ap.add_argument("--eval-cifar", default="../shared/data/cifar10-test.zip")
    ap.add_argument("--eval-photos", default="../shared/data/photos-train.zip")
    ap.add_argument("--cifar-limit", type=int, default=1000)
    ap.add_argument("--photo-limit", type=int, default=12)
    ap.add_argument("--snr", type=float, default=10.0, help="evaluation SNR, dB")
    ap.add_argument("--runs", default="runs/candidates", help="folder for the training runs")
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)

    sets = {"cifar": load_eval_images(args.eval_cifar, args.cifar_limit)[0],
            "photos": load_eval_images(args.eval_photos, args.photo_limit, size=(768, 512))[0]}
    rows, sampler = [], None
    for name in args.candidates.split(","):
        cfg = TrainConfig(model=name, epochs=10_000, snr_min=-5.0, snr_max=20.0,
                          warmup_frac=1.0, photo_share=args.photo_share)
        trainer = Trainer(cfg, Path(args.runs) / name)
        trainer.resume()
        if sampler is None:
            sampler = make_sampler(cfg, args.data, args.photos)
        trainer.fit(sampler, progress=False, cpu_budget_s=args.budget)
        model = trainer.model.eval()
        log = trainer.log
        rows.append({
            "candidate": name, "config": get_config(name).to_dict(),
            "parameters": parameter_count(model), "epochs": trainer.epoch,
            "steps": sum(r["steps"] for r in log),
            "cpu_seconds": round(sum(r["cpu_seconds"] for r in log)),
            "wall_seconds": round(sum(r["seconds"] for r in log)),
            "train_psnr_last": round(log[-1]["psnr"], 2),
            "eval": score(model, sets, args.snr), "encode_decode_256_ms": speed_ms(model),
        })
        print(rows[-1], flush=True)
    report = {"what": "equal CPU-budget comparison of JSCC backbones", "budget_cpu_s": args.budget,
              "train": {**asdict(cfg), "model": "each candidate", "data": args.data,
                        "photos": args.photos},
              "eval": {"snr_db": args.snr, "channel": "awgn", "cifar": f"{args.cifar_limit} of "
                       f"{args.eval_cifar}", "photos": f"{args.photo_limit} of {args.eval_photos}"
                       " at 768x512 (never trained on)"},
              "candidates": rows}
    emit(report, args.json)
    if args.markdown:
        lines = ["| candidate | params | steps | CIFAR L0 / L4 (gain) | photos L0 / L4 (gain) | "
                 "256x256 enc+dec ms |", "|---|---|---|---|---|---|"]
        for r in rows:
            c, p = r["eval"]["cifar"], r["eval"]["photos"]
            lines.append(f"| {r['candidate']} | {r['parameters']:,} | {r['steps']} | "
                         f"{c['level0']} / {c['level4']} ({c['gain']:+.2f}) | "
                         f"{p['level0']} / {p['level4']} ({p['gain']:+.2f}) | "
                         f"{r['encode_decode_256_ms']:.1f} |")
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
