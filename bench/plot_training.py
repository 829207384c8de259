"""Learning curves of JSCC training runs: training PSNR (mixed SNR, data and levels, as
``log.json`` records it) against optimiser steps, one line per run. Writes a PNG.

    .venv/bin/python bench/plot_training.py checkpoints/jscc-edge checkpoints/jscc-edge2 \
        checkpoints/jscc-wide checkpoints/jscc-wide-net2net \
        --out docs/results/jscc/learning-curves.png

With ``--chain`` each run starts where the one before it ended (a run started from the
previous run's weights, ``--init``), so a model's whole lineage reads as one curve:

    .venv/bin/python bench/plot_training.py --chain checkpoints/jscc-edge \
        checkpoints/jscc-wide-cifar checkpoints/jscc-wide-levels \
        --out docs/results/jscc/wide-lineage.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def curve(run: Path) -> tuple[list[int], list[float], dict]:
    """(cumulative steps, training PSNR per epoch, train config) of a run folder."""
    log = json.loads((run / "log.json").read_text())
    steps, psnr, total = [], [], 0
    for row in log["epochs"]:
        total += row["steps"]
        steps.append(total)
        psnr.append(row["psnr"])
    return steps, psnr, log["train_config"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders holding log.json")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--chain", action="store_true",
                   help="start each run's steps where the previous run's ended")
    args = p.parse_args(argv)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    offset = 0
    for run in args.runs:
        steps, psnr, tc = curve(run)
        steps = [s + offset for s in steps]
        offset = steps[-1] if args.chain and steps else 0
        data = "CIFAR-10" + (f" + photos {tc['photo_share']:g}" if tc.get("photo_share") else "")
        label = (f"{run.name}: {tc['model']}, {data}, SNR {tc['snr_min']:g}..{tc['snr_max']:g}"
                 + (", from " + Path(tc["init"]).parent.name if tc.get("init") else ""))
        ax.plot(steps, psnr, label=label)
    ax.set_xlabel("optimiser steps (batches)")
    ax.set_ylabel("training PSNR, dB (mixed SNR, levels, data)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
