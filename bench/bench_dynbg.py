"""Speed of dynbg per 640x480 frame: segmenters, live path (selfie + crop + online
background update), ORB matching against libraries of 1, 10 and 100 backgrounds.

    .venv/bin/python bench/bench_dynbg.py --json docs/results/dynbg/bench.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jsonreport import emit  # noqa: E402

from dynbg.background import OnlineBackground  # noqa: E402
from dynbg.keyinfo import extract  # noqa: E402
from dynbg.library import BackgroundLibrary  # noqa: E402
from dynbg.orb import OrbDescriber  # noqa: E402
from dynbg.segmenters import binary_mask, make_segmenter  # noqa: E402
from dynbg.video import read_frames  # noqa: E402


def _ms(fn, items, repeat: int = 1) -> float:
    fn(items[0])  # warm-up
    t = time.perf_counter()
    for _ in range(repeat):
        for x in items:
            fn(x)
    return round(1000 * (time.perf_counter() - t) / (repeat * len(items)), 3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", help="write the report here")
    p.add_argument("--frames", type=int, default=60)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    frames = [f.image for f in read_frames(ROOT / "samples/asl-again.mkv", max_frames=args.frames)]
    report: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                    "load_average_at_start": round(os.getloadavg()[0], 2),
                    "frame": "640x480 (samples/asl-again.mkv)", "ms_per_frame": {}}
    ms = report["ms_per_frame"]
    for name in ("selfie", "pose-hull", "rembg:u2netp"):
        with make_segmenter(name) as seg:
            ms[f"mask {name}"] = _ms(seg.mask, frames[:10] if "rembg" in name else frames)
    with make_segmenter("selfie") as seg:
        online = OnlineBackground()

        def live(frame):
            m = seg.mask(frame)
            extract(frame, binary_mask(m))
            online.update(frame, m)

        ms["live: selfie mask + crop + online update"] = _ms(live, frames)
        masks = [seg.mask(f) for f in frames]
    ms["crop only"] = _ms(lambda i: extract(frames[i], binary_mask(masks[i])),
                          list(range(len(frames))))
    ob = OnlineBackground()
    ms["online background update only"] = _ms(lambda i: ob.update(frames[i], masks[i]),
                                              list(range(len(frames))))
    t = time.perf_counter()
    ob.background()
    ms["online background query"] = round(1000 * (time.perf_counter() - t), 1)
    orb = OrbDescriber()
    ms["orb describe"] = _ms(orb.describe, frames)
    bikes = [f.image for f in read_frames(ROOT / "samples/bikes.mp4", step=2)]
    base = [orb.describe(b) for b in bikes[:100]]
    for n in (1, 10, 100):
        lib = BackgroundLibrary(ROOT / "samples", [f"b{i}" for i in range(n)], base[:n])
        ms[f"library match, {n} backgrounds"] = _ms(lib.match, frames[:10])
    report["load_average_at_end"] = round(os.getloadavg()[0], 2)
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
