"""``semstream bg build|match``: per-scene backgrounds of a video, and library matching."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from jscc.device_option import add_device_option


def _write_json(path: str | None, data: dict) -> None:
    text = json.dumps(data, indent=2)
    if path is None:
        print(text)
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text + "\n")


def _device(args: argparse.Namespace) -> str:
    """The resolved ``--device``; said on stderr (stdout may be the JSON) when a rembg
    segmenter will use it (mediapipe runs on the CPU)."""
    import sys

    from jscc.device import announce, resolve_device

    if "rembg:" not in args.segmenter:
        return str(resolve_device(args.device))
    return announce(args.device, f"bg {args.bg_command}", args.segmenter, sys.stderr)


def _build(args: argparse.Namespace) -> int:
    from dynbg.offline import build_video_library

    scenes = build_video_library(args.video, args.out, segmenter=args.segmenter,
                                 samples=args.samples, replace=args.force,
                                 device=_device(args))
    _write_json(args.json, {"video": str(args.video), "segmenter": args.segmenter,
                            "library": str(args.out),
                            "segments": [s.to_json() for s in scenes]})
    return 0


def _match(args: argparse.Namespace) -> int:
    from dynbg.library import BackgroundLibrary, read_image
    from dynbg.segmenters import make_segmenter

    library = BackgroundLibrary.open(args.library)
    image = read_image(Path(args.image))
    exclude = None
    if args.segmenter != "none":
        with make_segmenter(args.segmenter, _device(args)) as seg:
            exclude = seg.binary(image)
    _write_json(args.json, library.match(image, exclude).to_json())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bg build`` and ``bg match`` to the ``semstream`` subcommands."""
    bg = sub.add_parser("bg", help="dynamic backgrounds and the background library")
    bgsub = bg.add_subparsers(dest="bg_command", required=True, metavar="ACTION")

    b = bgsub.add_parser("build", help="one background per scene of a video, as a library")
    b.add_argument("video", help="input video file")
    b.add_argument("--out", required=True, help="library folder to create")
    b.add_argument("--segmenter", default="selfie+pose-hull",
                   help="foreground masks: selfie, pose-hull, rembg:<model> or several joined "
                        "by + (default selfie+pose-hull)")
    b.add_argument("--samples", type=int, default=32,
                   help="evenly spaced frames per scene that build its background (default 32)")
    b.add_argument("--json", help="write the report here (default: print it)")
    b.add_argument("--force", action="store_true", help="replace --out if it exists")
    add_device_option(b)
    b.set_defaults(func=_build)

    m = bgsub.add_parser("match", help="find the library background that matches an image")
    m.add_argument("image", help="image file (PNG/JPEG)")
    m.add_argument("--library", required=True, help="library folder (images + index)")
    m.add_argument("--segmenter", default="pose-hull",
                   help="foreground to mask out before ORB: pose-hull, selfie, "
                        "rembg:<model> or none (default pose-hull)")
    m.add_argument("--json", help="write the result here (default: print it)")
    add_device_option(m)
    m.set_defaults(func=_match)
