"""Longer fuzz run of the receiver core against hostile messages (issue 16): the CI
property test (tests/test_stream_receiver_fuzz.py) with a larger example budget.

    .venv/bin/python bench/fuzz_receiver.py --examples 2000 --json docs/results/stream/fuzz.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from jsonreport import emit

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/test_stream_receiver_fuzz.py::test_hostile_message_sequences_never_break_the_receiver"


def main() -> int:
    """Run the property test with --examples examples; print (and write) the outcome."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=2000, help="hypothesis examples (default 2000)")
    p.add_argument("--json", type=Path, metavar="FILE")
    args = p.parse_args()
    if args.examples < 1:
        p.error(f"--examples must be at least 1, got {args.examples}")
    env = {**os.environ, "SEMSTREAM_FUZZ_EXAMPLES": str(args.examples),
           "SEMSTREAM_FUZZ_RANDOM": "1"}
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST,
                          "--hypothesis-show-statistics"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    stats = [line.strip() for line in run.stdout.splitlines() if "passing" in line]
    emit({"examples": args.examples, "passed": run.returncode == 0,
          "seconds": round(seconds, 1), "hypothesis": stats,
          "output_tail": None if run.returncode == 0 else run.stdout[-3000:]}, args.json)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
