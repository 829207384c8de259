"""CPU speed of the JSCC codec and RIFE before and after ``--device`` (issue 18), in one run.

"Before" is a copy of the packages at ``--baseline`` (``git archive`` into a temporary
folder), "after" this working tree: one ``device_worker.py --serve`` process each (same
weights file, same frames, two torch threads, warmed up), driven call by call in
alternation (before, after, after, before, ...), so a load change on a shared machine hits
both sides alike. Per case the report gives each side's fastest and median call, and the
median and quartiles of the paired ratios after / before (adjacent calls); "slower" when
that median exceeds 1 + 3 % and even its first quartile is above 1.

    .venv/bin/python bench/bench_device.py --json docs/results/gpu/cpu-before-after.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from jsonreport import emit  # noqa: E402

BASELINE = "b1f9fc4"  # the last commit before --device reached the codec and RIFE
PACKAGES = ("jscc", "interp", "dynbg")
NOISE = 0.03  # a median paired ratio within 1 +- 3% counts as unchanged


def baseline_copy(rev: str, folder: Path) -> Path:
    """The packages at ``rev`` extracted into ``folder``; returns it."""
    archive = subprocess.run(["git", "archive", rev, *PACKAGES], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


class Worker:
    """A ``device_worker.py --serve`` process on the CPU with ``root``'s packages first."""

    def __init__(self, root: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(root), "CUDA_VISIBLE_DEVICES": ""}
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "device_worker.py"), "--serve"],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError(f"worker for {root} did not start: {line!r}")
        ready = json.loads(line[len("ready "):])
        if Path(ready["jscc_package"]).parent != root:
            raise RuntimeError(f"worker imported {ready['jscc_package']}, not {root}")
        self.cases: list[str] = ready["cases"]

    def call(self, case: str) -> float:
        """ms of one call of ``case``."""
        self.proc.stdin.write(case + "\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return q[0], statistics.median(values), q[-1]


def summarise(before: list[float], after: list[float]) -> dict:
    """One case: both sides' fastest and median ms, the paired ratios' quartiles."""
    q1, ratio, q3 = _quartiles([a / b for b, a in zip(before, after, strict=True)])
    return {"before_min_ms": round(min(before), 3), "after_min_ms": round(min(after), 3),
            "before_median_ms": round(statistics.median(before), 3),
            "after_median_ms": round(statistics.median(after), 3),
            "ratio_of_mins": round(min(after) / min(before), 4),
            "ratio": round(ratio, 4), "ratio_q1": round(q1, 4), "ratio_q3": round(q3, 4),
            "within_noise": abs(ratio - 1) <= NOISE or q1 <= 1 <= q3,
            "slower": ratio > 1 + NOISE and q1 > 1}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default=BASELINE, help=f"git revision (default {BASELINE})")
    p.add_argument("--repeat", type=int, default=15, help="paired calls per case (default 15)")
    p.add_argument("--json", help="write the report here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="semstream-baseline-") as tmp:
        sides = {"before": Worker(baseline_copy(args.baseline, Path(tmp))),
                 "after": Worker(ROOT)}
        times: dict[str, dict[str, list[float]]] = {c: {"before": [], "after": []}
                                                    for c in sides["after"].cases}
        try:
            for rep in range(args.repeat):
                for i, case in enumerate(times):
                    order = ("before", "after") if (rep + i) % 2 == 0 else ("after", "before")
                    for side in order:
                        times[case][side].append(sides[side].call(case))
        finally:
            for worker in sides.values():
                worker.close()
    cases = {c: summarise(t["before"], t["after"]) for c, t in times.items()}
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    report = {
        "what": "CPU ms per call of the JSCC codec (encode / decode) and RIFE (one middle "
                "frame) before and after --device, calls alternated between the two; "
                "ratio = median of the paired after / before ratios",
        "command": "python bench/bench_device.py " + " ".join(argv or sys.argv[1:]),
        "baseline": args.baseline, "after": f"{head} + working tree", "repeat": args.repeat,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()},
        "cases": cases,
        "ratio_median": round(statistics.median(c["ratio"] for c in cases.values()), 4),
        "all_within_noise": all(c["within_noise"] for c in cases.values()),
        "any_slower": any(c["slower"] for c in cases.values()),
    }
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
