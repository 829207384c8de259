"""Benchmark: JSCC encode + decode time through the codec API (numpy in, numpy out).

Cases: one 256 x 256 crop, one 480 x 640 frame, a batch of 128 images of 32 x 32
(encode_batch + decode_batch), for the shipped ``edge`` and ``wide`` weights and the
``paper`` widths (random weights: the speed does not depend on them), each in fp32 and,
where the CPU computes bf16 natively, under bf16 autocast (``<name>-bf16``). Prints a JSON
report; ``--json PATH`` also writes it. Times are the median of ``--repeat`` runs after
warm-up; all rows run in one process, so their ratios hold on a shared machine.

    .venv/bin/python bench/bench_jscc.py --json runs/bench_jscc.json
"""

from __future__ import annotations

import os

# Spinning OpenMP workers slow a 2-thread run badly when other processes share the
# cores; passive waiting costs nothing on an idle machine. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from jsonreport import emit

from jscc.codec import JSCCCodec  # noqa: E402
from jscc.device import cpu_bf16_native  # noqa: E402
from jscc.model import AdaptiveJSCC, get_config, parameter_count  # noqa: E402

TARGET_EDGE_256_MS = 15.0


def _time(fn, repeat: int, warmup: int = 2) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "runs": repeat}


def bench_codec(codec: JSCCCodec, repeat: int, rng: np.random.Generator) -> dict:
    """encode + decode timings of one codec on the three cases."""
    crop = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    tiles = list(rng.integers(0, 256, (128, 32, 32, 3), dtype=np.uint8))
    out = {
        "crop_256x256": _time(lambda: codec.decode(codec.encode(crop, 10.0)), repeat),
        "frame_480x640": _time(lambda: codec.decode(codec.encode(frame, 10.0)), repeat),
        "batch_128x32x32": _time(lambda: codec.decode_batch(codec.encode_batch(tiles, 10.0)),
                                 max(3, repeat // 4)),
    }
    out["batch_128x32x32"]["per_image_ms"] = out["batch_128x32x32"]["median_ms"] / 128
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the report here too")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    precisions = ("fp32", "bf16") if cpu_bf16_native() else ("fp32",)
    codecs = {}
    for precision in precisions:
        tag = "" if precision == "fp32" else f"-{precision}"
        for name in ("edge", "wide"):
            codecs[f"{name}{tag}"] = JSCCCodec.load(name, threads=args.threads,
                                                    precision=precision)
        codecs[f"paper{tag}"] = JSCCCodec(AdaptiveJSCC(get_config("paper")),
                                          threads=args.threads, precision=precision)
    report = {
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "processor": platform.processor(),
                    "load_average_1min_before": os.getloadavg()[0]},
        "models": {},
    }
    for name, codec in codecs.items():
        report["models"][name] = {"widths": list(codec.cfg.widths),
                                  "parameters": parameter_count(AdaptiveJSCC(codec.cfg)),
                                  **bench_codec(codec, args.repeat, rng)}
    edge_ms = report["models"]["edge"]["crop_256x256"]["median_ms"]
    paper_ms = report["models"]["paper"]["crop_256x256"]["median_ms"]
    report["target"] = {"edge_crop_256x256_ms": TARGET_EDGE_256_MS,
                        "met": edge_ms < TARGET_EDGE_256_MS,
                        # robust to a shared machine: both run in this process
                        "edge_to_paper_ratio_256x256": edge_ms / paper_ms}
    # issue 13: a new default model may take at most 1.5x the fp32 edge's 256 x 256 time
    report["ratio_to_edge_fp32_256x256"] = {
        name: round(row["crop_256x256"]["median_ms"] / edge_ms, 3)
        for name, row in report["models"].items()}
    report["machine"]["load_average_1min_after"] = os.getloadavg()[0]
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
