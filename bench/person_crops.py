"""Write key-information crops of people from the sample clips as PNGs (a JSCC test set).

The crops are what the pipeline really sends: dynbg's selfie foreground mask, its bounding
box with margin, aligned to the JSCC grid. Evaluate them with
``semstream jscc eval --data OUT --limit 0 --snr -5,0,5,10,15,20 --baseline separation``.

Usage: python bench/person_crops.py --out runs/person-crops [--step 15] [--per-clip 6]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

from dynbg.keyinfo import CropConfig, extract
from dynbg.segmenters import make_segmenter
from dynbg.video import read_frames

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ("asl-again.mkv", "asl-help.mkv", "asl-please.mkv", "asl-walk.mkv", "asl-yes.mkv",
         "one-by-one-person.mp4", "carphone.mp4")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG crops")
    parser.add_argument("--step", type=int, default=15, help="take every N-th frame")
    parser.add_argument("--per-clip", type=int, default=6, help="crops kept per clip")
    parser.add_argument("--min-side", type=int, default=32, help="skip smaller crops, pixels")
    parser.add_argument("--segmenter", default="selfie")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    with make_segmenter(args.segmenter) as segmenter:
        for clip in CLIPS:
            kept = 0
            for frame in read_frames(ROOT / "samples" / clip, step=args.step):
                if kept >= args.per_clip:
                    break
                key = extract(frame.image, segmenter.binary(frame.image), CropConfig())
                if key is None or min(key.crop.shape[:2]) < args.min_side:
                    continue
                name = args.out / f"{Path(clip).stem}-{frame.index:05d}.png"
                cv2.imwrite(str(name), cv2.cvtColor(key.crop, cv2.COLOR_RGB2BGR))
                kept += 1
            written += kept
    print(f"wrote {written} crops to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
