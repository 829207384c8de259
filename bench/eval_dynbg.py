"""Quality report for dynbg: scene cuts on bikes.mp4, one scene per ASL clip, and background
PSNR on one-by-one-person.mp4 (offline and online builder) against the empty-scene frames.

    .venv/bin/python bench/eval_dynbg.py --json docs/results/dynbg/eval.json

Ground truth for the background: frames 0-59 of one-by-one-person.mp4 show nobody (checked by
eye); their median is a first reference. A frame is empty when, after removing its global
brightness offset, fewer than 30 pixels differ from that reference by more than 30 levels
(after a 3x3 opening); boundaries of the runs found were checked by eye too. The ground truth
is the median of the empty frames. "Covered" pixels are those that differ the same way on any
non-empty frame (where a person ever was). The camera's automatic exposure brightens the
scene by up to 20 levels while a person is in view, so PSNR is given raw and after a
per-channel gain and offset fitted on the never-covered pixels ("exposure-matched").
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dynbg.background import BackgroundConfig, OnlineBackground, build_background  # noqa: E402
from dynbg.scenes import SceneConfig, SceneSegmenter  # noqa: E402
from dynbg.segmenters import make_segmenter  # noqa: E402
from dynbg.video import read_frames  # noqa: E402
from jscc.metrics import psnr  # noqa: E402

BIKES_CUTS = (30, 76, 137, 187, 242)  # first frame of each new shot, labelled by eye
SEED_EMPTY = range(5, 55)  # frames of one-by-one-person.mp4 with nobody in view (by eye)


def cut_scores(video: Path, truth: tuple[int, ...]) -> dict:
    """Cut detection precision/recall of the streaming scene segmenter (exact frame match)."""
    seg = SceneSegmenter(SceneConfig())
    found = [f.index for f in read_frames(video) if seg.update(f.image).cut]
    hits = sorted(set(found) & set(truth))
    return {"video": video.name, "true_cuts": list(truth), "found_cuts": found,
            "precision": len(hits) / len(found) if found else 1.0,
            "recall": len(hits) / len(truth) if truth else 1.0,
            "missed": sorted(set(truth) - set(found)), "false": sorted(set(found) - set(truth))}


def _changed(frame: np.ndarray, ref: np.ndarray) -> np.ndarray:
    d = frame.astype(np.float32) - ref
    d -= np.median(d.reshape(-1, 3), axis=0)
    m = (np.abs(d).max(axis=2) > 30).astype(np.uint8)
    return cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0


def exposure_match(image: np.ndarray, truth: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``image`` with a per-channel gain and offset (least squares on ``keep``) towards truth."""
    out = np.empty(image.shape, np.float64)
    for c in range(3):
        a = np.stack([image[..., c][keep].astype(np.float64), np.ones(int(keep.sum()))], 1)
        g, o = np.linalg.lstsq(a, truth[..., c][keep].astype(np.float64), rcond=None)[0]
        out[..., c] = image[..., c] * g + o
    return np.clip(out.round(), 0, 255).astype(np.uint8)


def _scores(image: np.ndarray, truth: np.ndarray, cover: np.ndarray) -> dict:
    matched = exposure_match(image, truth, ~cover)
    r = {"psnr_covered_db": psnr(matched, truth, cover), "psnr_whole_db": psnr(matched, truth),
         "raw_psnr_covered_db": psnr(image, truth, cover), "raw_psnr_whole_db": psnr(image, truth)}
    return {k: round(v, 2) for k, v in r.items()}


def background_scores(video: Path, offline_segmenter: str, online_segmenter: str, samples: int,
                      online_every: int) -> dict:
    """Offline and online background PSNR against the empty-scene ground truth."""
    seed = np.median(np.stack([f.image for f in read_frames(video, start=SEED_EMPTY.start,
                                                            max_frames=len(SEED_EMPTY))]),
                     axis=0).astype(np.float32)
    empty = [f.index for f in read_frames(video) if _changed(f.image, seed).sum() < 30]
    empty_set = set(empty)
    truth = np.median(np.stack([f.image for f in read_frames(video) if f.index in empty_set
                                and f.index % 2 == 0]), axis=0).round().astype(np.uint8)
    truth_f = truth.astype(np.float32)
    people = [f.index for f in read_frames(video) if f.index not in empty_set]
    wanted = set(np.asarray(people)[np.linspace(0, len(people) - 1, samples).round().astype(int)]
                 .tolist())
    cover = np.zeros(truth.shape[:2], bool)
    picked = []
    online = OnlineBackground(BackgroundConfig())
    curve = []
    t_mask = t_update = 0.0
    with make_segmenter(online_segmenter) as seg:
        for f in read_frames(video):
            t0 = time.perf_counter()
            m = seg.mask(f.image)
            t1 = time.perf_counter()
            online.update(f.image, m)
            t_update += time.perf_counter() - t1
            t_mask += t1 - t0
            if f.index in empty_set:
                continue
            cover |= _changed(f.image, truth_f)
            if f.index in wanted:
                picked.append(f.image)
            if f.index % online_every == 0:
                curve.append((f.index, online.background().image))
    with make_segmenter(offline_segmenter) as seg:
        masks = [seg.mask(f) for f in picked]
    offline = build_background(picked, masks, BackgroundConfig())
    online_scores = [{"frame": i, **_scores(img, truth, cover)} for i, img in curve]
    cov = [s["psnr_covered_db"] for s in online_scores]
    n = len(empty) + len(people)
    return {
        "video": video.name, "frames": n,
        "empty_frames": len(empty), "empty_runs": _runs(empty),
        "covered_fraction": round(float(cover.mean()), 4),
        "offline": {"segmenter": offline_segmenter, "frames_used": len(picked),
                    "from": "frames with a person in view only",
                    "unseen_fraction": offline.unseen_fraction, **_scores(offline.image, truth,
                                                                          cover)},
        "online": {"segmenter": online_segmenter, "fed": "every frame in order (empty ones too)",
                   "queried_every": online_every, "at_frames_with_a_person": online_scores,
                   "mean_psnr_covered_db": round(float(np.mean(cov)), 2),
                   "min_psnr_covered_db": round(float(np.min(cov)), 2)},
        "online_ms_per_frame": {"mask": round(1000 * t_mask / n, 2),
                         "online_update": round(1000 * t_update / n, 2)},
    }


def _runs(idx: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i in idx:
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return runs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", help="write the report here")
    p.add_argument("--offline-segmenter", default="selfie+pose-hull")
    p.add_argument("--online-segmenter", default="selfie", help="the live path's segmenter")
    p.add_argument("--samples", type=int, default=64, help="frames for the offline builder")
    p.add_argument("--online-every", type=int, default=100, help="query the online builder")
    args = p.parse_args(argv)
    samples = ROOT / "samples"
    report = {"cuts": cut_scores(samples / "bikes.mp4", BIKES_CUTS)}
    static = {}
    for v in sorted(samples.glob("asl-*.mkv")):
        seg = SceneSegmenter(SceneConfig())
        static[v.name] = 1 + sum(seg.update(f.image).cut for f in read_frames(v))
    report["static_clips"] = {"segments": static}
    report["background"] = background_scores(samples / "one-by-one-person.mp4",
                                             args.offline_segmenter, args.online_segmenter,
                                             args.samples, args.online_every)
    text = json.dumps(report, indent=2, allow_nan=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0 if math.isfinite(report["background"]["offline"]["psnr_covered_db"]) else 1


if __name__ == "__main__":
    sys.exit(main())
