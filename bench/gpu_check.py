"""One check of the GPU path (issue 18): prints one JSON report; on a machine without CUDA it
says so in one line and exits 1.

On a CUDA machine it measures, on the GPU and on the CPU:
- the JSCC codec and RIFE (``device_worker.py``: ms per encode / decode / middle frame,
  median and fastest of ``--repeat``) and the GPU's speed-up per stage (CPU ms / GPU ms);
- quality on the same frames and the same noise draws: JSCC at 10 dB and RIFE's middle
  frame, on the GPU in fp32 and with autocast (the default), and on the CPU; the PSNR that
  mixed precision loses against fp32 (the budget is 0.05 dB);
- ``semstream run`` on a sample clip (skip 2, RIFE on the foreground) with ``--device cuda``
  and ``--device cpu``: fps, ms per pipeline stage, PSNR.

    .venv/bin/python bench/gpu_check.py --json docs/results/gpu/<machine>.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PSNR_BUDGET_DB = 0.05


def _cuda_or_exit() -> None:
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA GPU on this machine (torch "
              f"{torch.__version__}); nothing measured: run it where torch.cuda.is_available()",
              file=sys.stderr)
        raise SystemExit(1)


def _speedup(cpu: dict, gpu: dict) -> dict:
    return {k: round(cpu[k]["median_ms"] / gpu[k]["median_ms"], 2) for k in cpu}


def semstream_run(device: str, clip: Path, frames: int) -> dict:
    """``semstream run`` on ``clip`` with ``--device``: fps, seconds, ms per stage, PSNR."""
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        out = Path(tmp) / "run.json"
        cmd = [str(Path(sys.executable).parent / "semstream"), "run", str(clip), "--max-frames",
               str(frames), "--skip", "2", "--device", device, "--no-rows", "--json", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1:], "command": " ".join(cmd[1:])}
        report = json.loads(out.read_text())
    return {"command": "semstream " + " ".join(cmd[1:-2]), "device": report.get("device"),
            "frames": report["frames"], "fps": report["fps"], "seconds": report["seconds"],
            "psnr_mean": report["psnr_mean"], "psnr_fg_mean": report["psnr_fg_mean"],
            "stage_ms_mean": {k: v["ms_mean"] for k, v in report["stages"].items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=10, help="timed calls per case")
    p.add_argument("--frames", type=int, default=8, help="frames of the quality check")
    p.add_argument("--run-frames", type=int, default=30, help="frames of semstream run")
    p.add_argument("--clip", type=Path, default=ROOT / "samples" / "asl-again.mkv")
    p.add_argument("--json", help="write the report here too")
    args = p.parse_args(argv)
    _cuda_or_exit()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    import torch
    from device_worker import quality, time_jscc, time_rife
    from jsonreport import emit

    from jscc.device import autocast_dtype, resolve_device

    gpu = str(resolve_device("cuda"))
    timing = {"gpu": {"jscc": time_jscc(gpu, args.repeat), "rife": time_rife(gpu, args.repeat)},
              "cpu": {"jscc": time_jscc("cpu", args.repeat),
                      "rife": time_rife("cpu", max(2, args.repeat // 3))}}
    q = {"gpu_fp32": quality(gpu, "fp32", args.frames),
         "gpu_mixed": quality(gpu, "auto", args.frames),
         "cpu": quality("cpu", None, args.frames)}
    lost = {m: round(q["gpu_fp32"][f"{m}_psnr"] - q["gpu_mixed"][f"{m}_psnr"], 4)
            for m in ("jscc", "rife")}
    run = {"gpu": semstream_run(gpu, args.clip, args.run_frames),
           "cpu": semstream_run("cpu", args.clip, args.run_frames)}
    if "fps" in run["gpu"] and "fps" in run["cpu"]:
        run["speedup_fps"] = round(run["gpu"]["fps"] / run["cpu"]["fps"], 2)
    report = {
        "machine": {"gpu": torch.cuda.get_device_name(gpu), "torch": torch.__version__,
                    "cuda": torch.version.cuda, "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "auto_resolves_to": str(resolve_device("auto")),
        "mixed_precision": str(autocast_dtype(torch.device(gpu))),
        "timing_ms": timing,
        "speedup_cpu_over_gpu": {m: _speedup(timing["cpu"][m], timing["gpu"][m])
                                 for m in ("jscc", "rife")},
        "quality_psnr_db": q, "psnr_lost_by_mixed_precision_db": lost,
        "mixed_precision_within_budget": all(v <= PSNR_BUDGET_DB for v in lost.values()),
        "semstream_run": run,
    }
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
