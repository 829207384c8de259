"""Issue 15's drift target for temporal coding: over a 60 s stream, the mean whole-frame
PSNR of the last 10 s within 0.3 dB of the first 10 s (cells kept for many frames must
not drift away from the source). JSON out.

The offline chain of ``semstream run`` (``stream.experiments.run``: sender -> wire ->
receiver, every frame processed) in proposed mode with temporal coding on, on a clip
looped to ``--seconds`` of frames (its video source is built with ``loop=True``); the
per-frame whole-frame PSNR comes from the run's rows. ``--max-pixels`` is the sender's
resolution check (the JSCC crop is scaled under it; the frame keeps its size). Usage:
``nice -n 5 .venv/bin/python bench/bench_temporal_drift.py
--json docs/results/stream/temporal-drift.json``
"""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from jsonreport import emit  # noqa: E402

from stream.core.config import ReceiverConfig, SenderConfig, TemporalConfig  # noqa: E402
from stream.core.sources import VideoFileSource  # noqa: E402
from stream.experiments import run  # noqa: E402

TARGET_DB = 0.3


def window_means(rows: list[dict], frames: int, window: int) -> tuple[float, float]:
    """Mean PSNR of the first and of the last ``window`` of ``frames`` rows (frames not
    delivered or without a finite PSNR are left out)."""
    def mean(lo: int, hi: int) -> float:
        values = [r["psnr"] for r in rows if lo <= r["index"] < hi and r.get("psnr") is not None]
        return statistics.fmean(values)

    return mean(0, window), mean(frames - window, frames)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--video", default="samples/asl-again.mkv")
    p.add_argument("--seconds", type=float, default=60.0, help="stream length (looped clip)")
    p.add_argument("--window", type=float, default=10.0, help="seconds compared at each end")
    p.add_argument("--snr", type=float, default=10.0)
    p.add_argument("--max-pixels", type=int, default=None,
                   help="the sender's resolution check (default: none, full-size crops)")
    p.add_argument("--paste", default=ReceiverConfig.paste, choices=("blend", "feather"),
                   help=f"the receiver's paste-back (default {ReceiverConfig.paste})")
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    load = os.getloadavg()
    fps = VideoFileSource(args.video, realtime=False).info.fps
    frames, window = round(args.seconds * fps), round(args.window * fps)
    config = run.RunConfig(
        sender=SenderConfig(snr_db=args.snr, channel="awgn", mode="proposed",
                            temporal=TemporalConfig(), max_pixels=args.max_pixels,
                            device="cpu"),
        receiver=ReceiverConfig(interp="off", paste=args.paste, device="cpu"),
        max_frames=frames, rows=True)
    # the runner's source, looped: same chain as ``semstream run``, a longer stream
    run.VideoFileSource = functools.partial(VideoFileSource, loop=True)
    started = time.perf_counter()
    report = run.run_video(args.video, config)
    seconds = time.perf_counter() - started
    rows = report["rows"]
    first, last = window_means(rows, report["frames"], window)
    diff = last - first
    emit({
        "bench": "temporal-drift",
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "video": args.video, "looped_to_s": args.seconds, "fps": fps,
        "frames": report["frames"], "frames_delivered": report["frames_delivered"],
        "window_s": args.window, "window_frames": window,
        "snr_db": args.snr, "channel": "awgn", "mode": "proposed", "temporal": True,
        "max_pixels": args.max_pixels, "paste": args.paste,
        "psnr_first_window_db": round(first, 3), "psnr_last_window_db": round(last, 3),
        "psnr_last_minus_first_db": round(diff, 3),
        "target": f"|last {args.window:g} s - first {args.window:g} s| <= {TARGET_DB} dB",
        "target_db": TARGET_DB, "met": abs(diff) <= TARGET_DB,
        "psnr_mean_db": report["psnr_mean"],
        "channel_uses_per_frame": report["channel_uses_per_frame"],
        "background_updates": report["background_updates"],
        "frames_dropped": report["frames_dropped"],
        "seconds": round(seconds, 1), "run_fps": report["fps"], "stages": report["stages"],
        "load_average_at_start": [round(v, 2) for v in load], "cpu_count": os.cpu_count(),
        "psnr_per_frame": [None if r.get("psnr") is None else round(r["psnr"], 3)
                           for r in rows],
    }, args.json)


if __name__ == "__main__":
    main()
