"""Per-frame cost of temporal coding's change detection and cell bookkeeping
(``stream.core.temporal.CellTracker``: grid crop + plan) at 640x480, JSON out.

The JSCC encoder is not timed (it runs with or without temporal coding): each frame's
crop latent is computed once beforehand, then the tracker's ``crop`` and ``plan`` are
timed over the clip, repeated. Usage:
``.venv/bin/python bench/bench_temporal.py --json docs/results/stream/bench-temporal.json``
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from jsonreport import emit  # noqa: E402

from dynbg.keyinfo import CropConfig, extract  # noqa: E402
from dynbg.segmenters import make_segmenter  # noqa: E402
from dynbg.video import read_frames  # noqa: E402
from jscc.codec import JSCCCodec  # noqa: E402
from stream.core.config import TemporalConfig  # noqa: E402
from stream.core.temporal import CellTracker  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--video", default="samples/asl-again.mkv")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--snr", type=float, default=10.0)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    codec = JSCCCodec.load()
    seg = make_segmenter("selfie")
    frames = [f.image for f in read_frames(args.video, max_frames=args.frames)]
    masks = [seg.binary(f, 0.5) for f in frames]
    boxes = [extract(f, m, CropConfig()).record.box for f, m in zip(frames, masks, strict=True)]
    probe = CellTracker(codec.cfg.downsample, TemporalConfig(), None)
    latents = []
    for f, m, b in zip(frames, masks, boxes, strict=True):
        g = probe.crop(f, m, b)
        tx = codec.encode(g.crop, args.snr, level=0)
        latents.append(tx.symbols.reshape(tx.planes_sent, *tx.latent_hw))
    noise = 10 ** (-args.snr / 10)
    per_frame, sent = [], []
    for _ in range(args.repeat):
        tracker = CellTracker(codec.cfg.downsample, TemporalConfig(), None)
        for i, (f, m, b, z) in enumerate(zip(frames, masks, boxes, latents, strict=True)):
            t0 = time.perf_counter()
            g = tracker.crop(f, m, b)
            plan = tracker.plan(z, g.origin, noise, index=i)
            per_frame.append(1000 * (time.perf_counter() - t0))
            sent.append(float((plan.actions != 0).mean()))
    seg.close()
    h, w = frames[0].shape[:2]
    emit({"what": "temporal coding: CellTracker.crop + plan per frame (JSCC not timed)",
          "video": args.video, "frame_size": [w, h], "frames": len(frames),
          "repeat": args.repeat, "snr_db": args.snr,
          "cell_pixels": codec.cfg.downsample,
          "ms_per_frame_median": round(statistics.median(per_frame), 3),
          "ms_per_frame_p90": round(float(np.percentile(per_frame, 90)), 3),
          "target_ms": 3.0,
          "cells_sent_fraction_mean": round(float(np.mean(sent)), 3),
          "machine": platform.platform(), "python": platform.python_version()}, args.json)


if __name__ == "__main__":
    main()
