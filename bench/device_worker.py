"""Timings and quality of the JSCC codec and RIFE on one device, for bench_device.py and
gpu_check.py.

Runs against whichever ``jscc`` / ``interp`` packages are first on ``sys.path`` (the
benchmark points PYTHONPATH at a copy of an older commit to time "before"), so it calls
only the API both sides share: ``JSCCCodec.load(path=, device=, threads=)``,
``Rife(device=, threads=)``, ``interpolate_batch``. Frames are real: ``samples/asl-again.mkv``.

    PYTHONPATH=. .venv/bin/python bench/device_worker.py --device cpu --repeat 10
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the semstream command does

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "samples" / "asl-again.mkv"
WEIGHTS = ROOT / "jscc" / "weights" / "edge.pt"
SNR_DB = 10.0


def frames(count: int) -> list[np.ndarray]:
    """The first ``count`` frames of the sample clip (H x W x 3 uint8 RGB)."""
    from interp.video import read_clip

    clip, _ = read_clip(CLIP, count)
    return clip


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn, device: str, repeat: int, warmup: int = 2) -> dict:
    """Median and fastest ms of ``repeat`` calls after ``warmup`` (GPU work waited for)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(1000 * (time.perf_counter() - t))
    return {"median_ms": round(statistics.median(times), 3), "min_ms": round(min(times), 3)}


def _kwargs(precision: str | None) -> dict:
    """precision only when asked: the code before --device has no such argument."""
    return {} if precision is None else {"precision": precision}


def load_codec(device: str, precision: str | None = None):
    """The shipped edge codec on ``device`` (2 CPU threads, as the commands use)."""
    from jscc.codec import JSCCCodec

    return JSCCCodec.load("edge", path=WEIGHTS, device=device, threads=2, **_kwargs(precision))


def load_rife(device: str, precision: str | None = None):
    """RIFE HDv3 on ``device`` (2 CPU threads)."""
    from interp.rife import Rife

    return Rife(device=device, threads=2, **_kwargs(precision))


def jscc_cases(device: str, precision: str | None = None) -> dict:
    """Case name -> one call: encode and decode of a 256 x 256 crop, a 480 x 640 frame, and
    a batch of 8 crops of 128 x 128 (encode_batch / decode_batch)."""
    codec = load_codec(device, precision)
    frame = frames(1)[0]
    inputs = {"crop_256": [frame[100:356, 200:456].copy()], "frame_480x640": [frame],
              "batch_8x128": [frame[r:r + 128, c:c + 128].copy()
                              for r in (0, 200) for c in (0, 160, 320, 480)]}
    calls = {}
    for name, images in inputs.items():
        txs = codec.encode_batch(images, SNR_DB)
        calls[f"{name} encode"] = lambda im=images: codec.encode_batch(im, SNR_DB)
        calls[f"{name} decode"] = lambda t=txs: codec.decode_batch(t)
    return calls


def rife_cases(device: str, precision: str | None = None) -> dict:
    """Case name -> one call: the middle frame of a 640 x 480 pair at scale 1 and 0.5, and
    of a 256 x 256 crop pair (what rife-fg interpolates around a person)."""
    rife = load_rife(device, precision)
    f0, _, f2 = frames(3)
    c0, c2 = f0[100:356, 200:456].copy(), f2[100:356, 200:456].copy()
    return {"frame_480x640": lambda: rife.interpolate_batch([f0], [f2]),
            "frame_480x640@0.5": lambda: rife.interpolate_batch([f0], [f2], scale=0.5),
            "crop_256": lambda: rife.interpolate_batch([c0], [c2])}


def time_jscc(device: str, repeat: int, precision: str | None = None) -> dict:
    """``_time`` of every case of :func:`jscc_cases`."""
    return {k: _time(fn, device, repeat) for k, fn in jscc_cases(device, precision).items()}


def time_rife(device: str, repeat: int, precision: str | None = None) -> dict:
    """``_time`` of every case of :func:`rife_cases`."""
    return {k: _time(fn, device, repeat) for k, fn in rife_cases(device, precision).items()}


def serve(device: str) -> None:
    """Time one call per line read from stdin ("jscc <case>" or "rife <case>"), answer its
    ms on stdout; the first line out is "ready" and JSON: the jscc package used, the cases."""
    calls = {**{f"jscc {k}": fn for k, fn in jscc_cases(device).items()},
             **{f"rife {k}": fn for k, fn in rife_cases(device).items()}}
    for fn in calls.values():  # warm-up
        fn()
    import jscc

    ready = {"jscc_package": str(Path(jscc.__file__).parent), "cases": list(calls)}
    print("ready " + json.dumps(ready), flush=True)
    for line in sys.stdin:
        fn = calls[line.strip()]
        t = time.perf_counter()
        fn()
        _sync(device)
        print(f"{1000 * (time.perf_counter() - t):.3f}", flush=True)


def quality(device: str, precision: str | None, count: int) -> dict:
    """Mean PSNR (dB) over ``count`` frames: JSCC at 10 dB AWGN (noise seeded per frame, so
    every precision sees the same draws) and RIFE's middle frame k from k-1 and k+1."""
    from jscc.metrics import psnr

    clip = frames(count + 2)
    codec = load_codec(device, precision)
    jscc = []
    for i, image in enumerate(clip[:count]):
        decoded, _ = codec.transmit(image, SNR_DB, generator=torch.Generator().manual_seed(i))
        jscc.append(psnr(image, decoded))
    rife = load_rife(device, precision)
    middle = [psnr(clip[k], rife.interpolate(clip[k - 1], clip[k + 1]))
              for k in range(1, count + 1)]
    return {"frames": count, "jscc_psnr": round(float(np.mean(jscc)), 4),
            "rife_psnr": round(float(np.mean(middle)), 4)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default=None, help="auto | fp32 | fp16 | bf16 (new code)")
    p.add_argument("--repeat", type=int, default=10, help="timed runs per case (median)")
    p.add_argument("--what", default="jscc,rife", help="jscc, rife and/or quality")
    p.add_argument("--serve", action="store_true",
                   help="time single calls named on stdin (bench_device.py drives it)")
    p.add_argument("--frames", type=int, default=8, help="frames of the quality check")
    args = p.parse_args(argv)
    if args.serve:
        serve(args.device)
        return 0
    import jscc

    report = {"jscc_package": str(Path(jscc.__file__).parent), "device": args.device,
              "torch_threads": torch.get_num_threads()}
    what = args.what.split(",")
    if "jscc" in what:
        report["jscc"] = time_jscc(args.device, args.repeat, args.precision)
    if "rife" in what:
        report["rife"] = time_rife(args.device, args.repeat, args.precision)
    if "quality" in what:
        report["quality"] = quality(args.device, args.precision, args.frames)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
