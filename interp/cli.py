"""``semstream interp``: drop all but every k-th frame, regenerate the rest, report per method.

A two-frame input (e.g. a folder holding one image pair) has no ground truth: each method
makes the intermediate frames, the report gives its time and no scores.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from jscc.device_option import add_device_option

METHODS = ("rife", "rife-fg", "dis", "blend", "repeat")  # mirrors interp.methods.METHOD_NAMES
FOREGROUND_SOURCES = ("selfie", "motion")


def _clean(value):
    """JSON-safe copy: non-finite floats become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _foreground_boxes(frames: list, skip: int, source: str) -> tuple[list | None, str]:
    """Per-frame foreground boxes of the kept frames (others None) and how they were found."""
    if source == "motion":
        return None, "none: rife-fg interpolates what moves anywhere in the frame"
    try:
        from dynbg.segmenters import make_segmenter
    except ImportError as exc:
        return None, f"dynbg segmenters not importable ({exc}): moving part of the whole frame"
    from interp.foreground import box_from_mask

    boxes: list = [None] * len(frames)
    with make_segmenter("selfie") as seg:
        for i in range(0, len(frames), skip):
            boxes[i] = box_from_mask(seg.binary(frames[i]))
    return boxes, "selfie (dynbg.segmenters), box of the binary mask of each kept frame"


def _build_methods(args: argparse.Namespace) -> tuple[dict, dict]:
    """Available interpolators by name, and the reason for each one that is not."""
    from interp.foreground import ForegroundConfig
    from interp.ifnet import WeightsError
    from interp.methods import MethodConfig, make_interpolator
    from jscc.device import announce
    from jscc.zoo import ModelFileError

    config = MethodConfig(weights=args.weights, scale=args.scale, fg_scale=args.fg_scale,
                          threads=args.threads, device=announce(args.device, "interp"),
                          foreground=ForegroundConfig(motion_threshold=args.motion_threshold))
    methods, unavailable = {}, {}
    for name in dict.fromkeys(args.methods):
        try:
            methods[name] = make_interpolator(name, config)
        except (ModelFileError, WeightsError, FileNotFoundError) as exc:
            unavailable[name] = str(exc)
    if not methods:
        raise ValueError("no requested method can run: " + "; ".join(
            f"{k}: {v}" for k, v in unavailable.items()))
    return methods, unavailable


def _pair_report(frames: list, skip: int, methods: dict, keep: str) -> tuple[dict, list]:
    from interp.evaluate import time_pair
    from interp.frames import skip_times

    scores, video = {}, []
    for name, method in methods.items():
        made, ms = time_pair(method, frames[0], frames[1], skip_times(skip), repeats=2)
        scores[name] = {"psnr": None, "ssim": None, "ms_per_frame": ms, "frames": len(made)}
        if name == keep:
            video = [frames[0], *made, frames[1]]
    return scores, video


def _run(args: argparse.Namespace) -> int:
    from interp.evaluate import evaluate
    from interp.video import read_clip, write_video

    if args.skip < 2:
        raise ValueError(f"--skip must be at least 2, got {args.skip}")
    frames, fps = read_clip(args.video, args.max_frames, args.fps)
    if len(frames) < 2:
        raise ValueError(f"{args.video} has {len(frames)} frame: need at least 2")
    methods, unavailable = _build_methods(args)
    keep = args.video_method or next(iter(methods))
    if keep not in methods:
        raise ValueError(f"--video-method {keep} is not among the methods that run: "
                         f"{', '.join(methods)}")
    boxes, fg_note = (None, None)
    if "rife-fg" in methods:
        boxes, fg_note = _foreground_boxes(frames, args.skip, args.foreground)
    pair_mode = len(frames) == 2
    if pair_mode:
        scores, video = _pair_report(frames, args.skip, methods, keep)
    else:
        results, video = evaluate(frames, args.skip, methods, boxes, keep)
        scores = {name: r.summary() for name, r in results.items()}
    h, w = frames[0].shape[:2]
    report = {
        "input": str(args.video), "frames": len(frames), "width": w, "height": h, "fps": fps,
        "skip": args.skip, "input_fps": fps / args.skip, "output_fps": fps,
        "ground_truth": not pair_mode, "methods": scores, "unavailable": unavailable,
        "video_method": keep if args.out else None, "foreground_boxes": fg_note,
        "config": {"scale": args.scale, "fg_scale": args.fg_scale, "threads": args.threads,
                   "motion_threshold": args.motion_threshold},
    }
    if args.out:
        write_video(args.out, video, fps)
    text = json.dumps(_clean(report), indent=2)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    for name, s in scores.items():
        psnr = "  n/a" if s["psnr"] is None else f"{s['psnr']:5.2f}"
        print(f"{name:8s} psnr {psnr} dB  {s['ms_per_frame']:8.1f} ms/frame")
    for name, why in unavailable.items():
        print(f"{name:8s} unavailable: {why}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``interp`` to the ``semstream`` subcommands."""
    p = sub.add_parser("interp", help="regenerate skipped frames and score each interpolator")
    p.add_argument("video", help="input video file, or a folder of images taken in name order")
    p.add_argument("--skip", type=int, default=2,
                   help="keep every K-th frame and regenerate the K-1 between (default 2)")
    p.add_argument("--out", help="write the kept + regenerated frames of --video-method here")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                   help="methods to compare (default all)")
    p.add_argument("--video-method", choices=METHODS,
                   help="method whose frames go to --out (default the first that runs)")
    p.add_argument("--max-frames", type=int, help="read at most N frames")
    p.add_argument("--scale", type=float, default=1.0,
                   help="RIFE flow resolution knob for rife: 0.25, 0.5, 1 or 2 (default 1)")
    p.add_argument("--fg-scale", type=float, default=1.0,
                   help="the same knob for rife-fg (default 1)")
    p.add_argument("--foreground", choices=FOREGROUND_SOURCES, default="selfie",
                   help="rife-fg boxes: selfie masks of the kept frames, or none (only motion)")
    p.add_argument("--motion-threshold", type=float, default=16.0,
                   help="rife-fg: gray-level change that counts as motion (default 16)")
    p.add_argument("--weights", help="RIFE HDv3 flownet.pkl (default: the fetched model)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    add_device_option(p)
    p.add_argument("--fps", type=float, default=30.0,
                   help="frame rate of an image-folder input (default 30)")
    p.set_defaults(func=_run)
