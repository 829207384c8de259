"""Rate adaptation at a glance: PSNR of every fixed rate level and of the policy, per SNR.

For each SNR the model codes the evaluation images at each fixed level 0..L-1 (1/12 .. 1/6
channel uses per source value) and with its policy; the report gives mean PSNR and mean
rate per point, the policy's level histogram, and the gain of the top level over level 0.
The plot draws PSNR against rate: one curve per SNR through the fixed levels, the policy's
operating point on top, so one sees whether the policy sits on the fixed-level envelope.

    .venv/bin/python bench/jscc_envelope.py --model jscc/weights/edge.pt \
        --data ../shared/data/cifar10-test.zip --limit 1000 \
        --json docs/results/jscc/envelope-cifar.json --plot docs/results/jscc/envelope-cifar.png
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from jsonreport import emit  # noqa: E402

from jscc.evaluate import EvalConfig, evaluate_model, load_eval_images  # noqa: E402
from jscc.export import load_model  # noqa: E402
from jscc.model import AdaptiveJSCC  # noqa: E402


def envelope(model: AdaptiveJSCC, images: list, snrs: tuple[float, ...]) -> list[dict]:
    """Per SNR: fixed-level points [(rate, psnr)], the policy point and its histogram."""
    rows = []
    for snr in snrs:
        fixed = []
        for level in range(model.cfg.levels):
            res = evaluate_model(model, images, EvalConfig(snrs=(snr,), level=level))[0][0]
            fixed.append({"level": level, "rate": round(res["rate"], 5),
                          "psnr": round(res["psnr"], 3)})
        pol = evaluate_model(model, images, EvalConfig(snrs=(snr,)))[0][0]
        rows.append({"snr": snr, "fixed": fixed,
                     "policy": {"rate": round(pol["rate"], 5), "psnr": round(pol["psnr"], 3),
                                "levels": pol["levels"]},
                     "gain_top_over_level0": round(fixed[-1]["psnr"] - fixed[0]["psnr"], 3)})
    return rows


def plot(rows: list[dict], title: str, path: str) -> None:
    """PSNR against rate: fixed-level curves per SNR, the policy's points as stars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for row in rows:
        line, = ax.plot([p["rate"] for p in row["fixed"]], [p["psnr"] for p in row["fixed"]],
                        "o-", ms=3, label=f"{row['snr']:g} dB fixed levels")
        ax.plot(row["policy"]["rate"], row["policy"]["psnr"], "*", ms=12, color=line.get_color())
    ax.set_xlabel("channel uses per source value")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"{title} (stars: the policy)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="weights file or training checkpoint")
    ap.add_argument("--data", required=True, help="folder or zip of evaluation images")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--size", default=None, help="LONGxSHORT to fit each image to, e.g. 768x512")
    ap.add_argument("--snr", default="0,5,10,15,20")
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    size = tuple(int(v) for v in args.size.split("x")) if args.size else None
    images, info = load_eval_images(args.data, args.limit or None, size=size)
    model = load_model(args.model)
    snrs = tuple(float(v) for v in args.snr.split(","))
    rows = envelope(model, images, snrs)
    emit({"model": args.model, "config": model.cfg.to_dict(), "data": info, "channel": "awgn",
          "rows": rows}, args.json)
    if args.plot:
        plot(rows, f"{model.cfg.name} on {Path(args.data).name}", args.plot)


if __name__ == "__main__":
    main()
