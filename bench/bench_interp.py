"""Speed of each interpolation method on 640x480 ASL frame pairs (skip 2), as a JSON report.

Methods run interleaved on the same pairs in one process (so machine load hits them alike);
each pair is timed ``--repeats`` times and the fastest run kept, then the median over pairs is
reported, wall clock and process CPU time. The foreground-only speed-up is the median of the
per-pair ratios whole-frame / foreground-only. Also checks whether the foreground path keeps
30 fps out of 15 fps in: one interpolated frame per received frame, so 1000/15 ms each.

    .venv/bin/python bench/bench_interp.py --json docs/results/interp/bench.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jsonreport import emit  # noqa: E402

from interp.foreground import box_from_mask  # noqa: E402
from interp.methods import MethodConfig, make_interpolator  # noqa: E402
from interp.video import read_clip  # noqa: E402
from jscc.metrics import psnr  # noqa: E402

VARIANTS = {  # report name -> (method, config)
    "rife": ("rife", MethodConfig()),
    "rife@0.5": ("rife", MethodConfig(scale=0.5)),
    "rife-fg": ("rife-fg", MethodConfig()),
    "rife-fg@0.5": ("rife-fg", MethodConfig(fg_scale=0.5)),
    "rife-fg@0.25": ("rife-fg", MethodConfig(fg_scale=0.25)),
    "dis": ("dis", MethodConfig()),
    "blend": ("blend", MethodConfig()),
    "repeat": ("repeat", MethodConfig()),
}
INPUT_FPS, OUTPUT_FPS = 15.0, 30.0


def _boxes(frames: list[np.ndarray]) -> list:
    from dynbg.segmenters import make_segmenter

    with make_segmenter("selfie") as seg:
        return [box_from_mask(seg.binary(f)) for f in frames]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default=str(ROOT / "samples" / "asl-again.mkv"))
    p.add_argument("--pairs", type=int, default=8, help="frame pairs (k-1, k+1), spread evenly")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per pair (fastest kept)")
    p.add_argument("--json", help="write the report here")
    args = p.parse_args(argv)

    frames, _ = read_clip(args.clip)
    centres = np.linspace(1, len(frames) - 2, args.pairs).round().astype(int)
    boxes = _boxes(frames)
    methods = {name: make_interpolator(m, cfg) for name, (m, cfg) in VARIANTS.items()}
    wall = {n: [] for n in methods}
    cpu = {n: [] for n in methods}
    quality = {n: [] for n in methods}
    load_before = os.getloadavg()[0]
    for k in centres:
        a, b = frames[k - 1], frames[k + 1]
        for name, method in methods.items():
            best_wall, best_cpu = float("inf"), float("inf")
            for _ in range(args.repeats):
                w0, c0 = time.perf_counter(), time.process_time()
                out = method(a, b, (0.5,), (boxes[k - 1], boxes[k + 1]))[0]
                best_wall = min(best_wall, time.perf_counter() - w0)
                best_cpu = min(best_cpu, time.process_time() - c0)
            wall[name].append(1000 * best_wall)
            cpu[name].append(1000 * best_cpu)
            quality[name].append(psnr(frames[k], out))
    med = {n: float(np.median(v)) for n, v in wall.items()}
    ratio = {fg: float(np.median(np.array(wall["rife"]) / np.array(wall[fg])))
             for fg in ("rife-fg", "rife-fg@0.5", "rife-fg@0.25")}
    budget = 1000.0 / INPUT_FPS
    h, w = frames[0].shape[:2]
    report = {
        "clip": str(Path(args.clip).relative_to(ROOT)) if Path(args.clip).is_relative_to(ROOT)
        else args.clip,
        "size": [w, h], "pairs": [int(k) for k in centres], "repeats": args.repeats,
        "torch_threads": 2, "cpu_count": os.cpu_count(),
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "ms_per_frame_wall": med,
        "ms_per_frame_cpu": {n: float(np.median(v)) for n, v in cpu.items()},
        "psnr_mean": {n: float(np.mean(v)) for n, v in quality.items()},
        "fg_speedup_vs_rife": ratio,
        "fg_psnr_delta_vs_rife": {fg: float(np.mean(quality[fg]) - np.mean(quality["rife"]))
                                  for fg in ratio},
        "live_15_to_30fps": {
            "budget_ms_per_interpolated_frame": budget,
            **{fg: med[fg] <= budget for fg in ratio},
        },
    }
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
