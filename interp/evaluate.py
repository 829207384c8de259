"""Skip-and-regenerate evaluation: keep every k-th frame, rebuild the rest with each method,
score the rebuilt frames against the dropped originals (PSNR/SSIM) and time them."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from interp.foreground import Box
from interp.frames import check_frame, skip_times
from interp.methods import Interpolator
from jscc.metrics import QualityLog


@dataclass
class MethodResult:
    """One method's scores: its regenerated frames' quality log and the time spent (s)."""

    log: QualityLog = field(default_factory=QualityLog)
    seconds: float = 0.0
    frames: int = 0

    def summary(self) -> dict:
        """{"psnr", "psnr_pooled", "ssim", "ms_per_frame", "frames"}; PSNR in dB (mean of
        finite per-frame values), ms per regenerated frame (None when nothing was scored)."""
        s = self.log.summary()
        return {
            "psnr": s.get("psnr_mean"),
            "psnr_pooled": s.get("psnr_pooled"),
            "ssim": s.get("ssim_mean"),
            "ms_per_frame": 1000.0 * self.seconds / self.frames if self.frames else None,
            "frames": self.frames,
        }


def gaps(n_frames: int, skip: int) -> list[tuple[int, int]]:
    """(i, i + skip) index pairs of kept frames whose dropped frames lie inside the clip."""
    return [(i, i + skip) for i in range(0, n_frames - skip, skip)]


def evaluate(frames: Sequence[np.ndarray], skip: int, methods: Mapping[str, Interpolator],
             boxes: Sequence[Box | None] | None = None, keep: str | None = None
             ) -> tuple[dict[str, MethodResult], list[np.ndarray]]:
    """Score every method on ``frames`` (H x W x 3 uint8 RGB) at skip factor ``skip``.

    boxes: per-frame foreground boxes (for rife-fg; None = none known). keep: the method
    whose output video is returned (kept frames with its regenerated ones between), up to
    the last kept frame; None returns no video. The scored frames are the dropped ones.
    """
    times = skip_times(skip)
    pairs = gaps(len(frames), skip)
    if not pairs:
        raise ValueError(f"{len(frames)} frames is too few for skip {skip}: need at least "
                         f"{skip + 1}")
    for i, f in enumerate(frames):
        check_frame(f, f"frame {i}")
    results = {name: MethodResult() for name in methods}
    video: list[np.ndarray] = []
    for i, j in pairs:
        pair_boxes = (boxes[i], boxes[j]) if boxes is not None else None
        for name, method in methods.items():
            start = time.perf_counter()
            made = method(frames[i], frames[j], times, pair_boxes)
            res = results[name]
            res.seconds += time.perf_counter() - start
            res.frames += len(made)
            for step, frame in enumerate(made, start=1):
                res.log.add(frames[i + step], frame, index=i + step)
            if name == keep:
                video.extend([frames[i], *made])
    if keep is not None:
        video.append(frames[pairs[-1][1]])
    return results, video


def time_pair(method: Interpolator, frame0: np.ndarray, frame1: np.ndarray,
              times: Sequence[float], repeats: int = 1) -> tuple[list[np.ndarray], float]:
    """Run ``method`` on one pair ``repeats`` times; its output and the fastest run's ms per
    produced frame (for inputs without a ground truth, e.g. a single demo pair)."""
    best = float("inf")
    made: list[np.ndarray] = []
    for _ in range(repeats):
        start = time.perf_counter()
        made = method(frame0, frame1, times)
        best = min(best, time.perf_counter() - start)
    return made, 1000.0 * best / len(made)
