"""Speed of the motion segmenters per 640x480 frame (issue 19 target: motion < 5 ms).

    .venv/bin/python bench/bench_motion.py --json docs/results/keyinfo/bench-motion.json

Frames: asl-again.mkv (640x480) and, where ../shared exists, road.avi resized to 640x480,
fed in order (the segmenters are stateful). The first 5 frames warm up and are not timed.
Reported per segmenter: median, 90th percentile and mean milliseconds per frame
(``mask`` call: subtraction, morphology, scaling back), and the mean foreground fraction.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.jsonreport import emit  # noqa: E402
from dynbg.segmenters import make_segmenter  # noqa: E402
from dynbg.video import read_frames  # noqa: E402

CLIPS = (ROOT / "samples" / "asl-again.mkv", ROOT.parent / "shared" / "samples" / "road.avi")
WARM = 5


def time_segmenter(name: str, frames: list[np.ndarray]) -> dict:
    """Milliseconds per frame of segmenter ``name`` over ``frames`` (in order)."""
    times, fractions = [], []
    with make_segmenter(name) as seg:
        for i, f in enumerate(frames):
            t = time.perf_counter()
            m = seg.mask(f)
            if i >= WARM:
                times.append(1000 * (time.perf_counter() - t))
                fractions.append(float((m >= 0.5).mean()))
    return {"ms_median": round(float(np.median(times)), 3),
            "ms_p90": round(float(np.percentile(times, 90)), 3),
            "ms_mean": round(float(np.mean(times)), 3), "frames_timed": len(times),
            "foreground_fraction_mean": round(float(np.mean(fractions)), 4)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=90, help="frames per clip (default 90)")
    p.add_argument("--segmenters", default="motion,motion:knn,auto,selfie",
                   help="comma-separated segmenters (default motion,motion:knn,auto,selfie)")
    p.add_argument("--json", help="write the JSON report here")
    args = p.parse_args(argv)
    report = {"size": "640x480", "cpu": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "opencv_threads": cv2.getNumThreads(),
              "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
              "command": "bench/bench_motion.py " + " ".join(argv or sys.argv[1:]),
              "clips": {}}
    for path in CLIPS:
        if not path.is_file():
            continue
        frames = [cv2.resize(f.image, (640, 480), interpolation=cv2.INTER_AREA)
                  if f.image.shape[:2] != (480, 640) else f.image
                  for f in read_frames(path, max_frames=args.frames)]
        report["clips"][path.name] = {s: time_segmenter(s, frames)
                                      for s in args.segmenters.split(",") if s}
    emit(report, args.json)


if __name__ == "__main__":
    main()
