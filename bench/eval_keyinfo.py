"""Key information beyond people (issue 19): proposed mode per segmenter against direct mode
on every kind of sample clip, with the moving-object PSNR and the seam score.

    .venv/bin/python bench/eval_keyinfo.py --json docs/results/keyinfo/eval.json \
        --markdown docs/results/keyinfo/eval.md

Per clip, a window of frames goes through the real sender -> wire -> receiver chain
(AWGN at ``--snr`` dB, the shipped JSCC weights, no skipping). Scores:

- psnr: mean over frames of the whole-frame PSNR (dB);
- psnr_moving: PSNR of the moving-object region, pooled over all its pixels in the window:
  pixels more than 25 levels (any channel) from the window's temporal median of the
  ORIGINAL frames, so it does not depend on the segmenter under test;
- channel_uses: all channel uses (crops or frames, backgrounds, side information) per
  frame, and their ratio to direct mode's;
- seam: mean absolute difference (levels) of the pixel pairs straddling the crop box's
  inner edges, pooled over frames: in proposed's output (border), on a line 8 px inside the
  box (inside), in direct mode's output at the same pairs (direct) and in the original
  (original). seam_ratio = border / direct (target <= 1.10).

Methods: direct; proposed with each segmenter (feathered paste-back and exposure gain, the
defaults); and selfie without the gain ("selfie-nogain"), with the blend paste-back of
``dynbg.blend`` ("selfie-blend") and with neither ("selfie-blend-nogain").
Clips from ``../shared/samples`` are skipped when that folder is absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.jsonreport import emit  # noqa: E402
from dynbg.seam import seam_sums  # noqa: E402
from dynbg.video import read_frames  # noqa: E402
from jscc.metrics import psnr, psnr_from_mse  # noqa: E402
from stream.core import wire  # noqa: E402
from stream.core.config import ReceiverConfig, SenderConfig  # noqa: E402
from stream.core.frames import Frame  # noqa: E402
from stream.core.receiver import ReceiverCore  # noqa: E402
from stream.core.sender import SenderCore, load_codec  # noqa: E402

SHARED = ROOT.parent / "shared" / "samples"
# name, path, first frame, kind
CLIPS = (
    ("asl-again", ROOT / "samples" / "asl-again.mkv", 0, "people (video call)"),
    ("one-by-one-person", ROOT / "samples" / "one-by-one-person.mp4", 50,
     "people walking through, auto-exposure"),
    ("road", SHARED / "road.avi", 40, "traffic, static camera"),
    ("bikes", ROOT / "samples" / "bikes.mp4", 0, "bikes, camera motion and a cut"),
    ("carphone", ROOT / "samples" / "carphone.mp4", 0, "talking head, moving car window"),
)
SEGMENTERS = ("selfie", "motion", "auto", "selfie+motion")
MOVING_LEVELS = 25
SEAM_INSET = 8


def moving_masks(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Per frame, H x W bool: more than MOVING_LEVELS from the window's temporal median."""
    median = np.median(np.stack(frames), axis=0).astype(np.int16)
    return [(np.abs(f.astype(np.int16) - median).max(axis=2) > MOVING_LEVELS) for f in frames]


def run_chain(frames: list[np.ndarray], fps: float, sender_cfg: SenderConfig,
              receiver_cfg: ReceiverConfig, codec) -> tuple[list[np.ndarray], list, int, float]:
    """Frames through sender -> wire -> receiver: (outputs, crop boxes per frame or None,
    channel uses, seconds)."""
    t0 = time.perf_counter()
    sender = SenderCore(sender_cfg, codec)
    receiver = ReceiverCore(receiver_cfg, codec)
    h, w = frames[0].shape[:2]
    receiver.start(wire.SessionParams(w, h, fps, 0, sender_cfg.channel, sender_cfg.snr_db))
    packer, unpacker = wire.Packer(), wire.Unpacker()
    outputs: dict[int, np.ndarray] = {}
    boxes: list = [None] * len(frames)
    for i, image in enumerate(frames):
        out = sender.encode(sender.analyse(Frame(image, i, i / fps, time.time())))
        for msg in out.messages:
            for packet in packer.pack(msg):
                done = unpacker.feed(packet)
                if done is None:
                    continue
                if isinstance(done, wire.FrameMsg) and done.mode == wire.Mode.KEY \
                        and done.symbols.size:
                    boxes[i] = tuple(done.box)
                for o in receiver.compose(receiver.decode(done)):
                    outputs[o.index] = o.image
    sender.close()
    missing = [i for i in range(len(frames)) if i not in outputs]
    if missing:
        raise RuntimeError(f"frames {missing[:5]} were not rebuilt")
    return ([outputs[i] for i in range(len(frames))], boxes, sender.ledger.total,
            time.perf_counter() - t0)


def seam(images: list[np.ndarray], boxes: list, inset: int = 0) -> float | None:
    """Pooled seam measure (levels) of ``images`` at ``boxes`` (None entries skipped)."""
    total, count = 0.0, 0
    for image, box in zip(images, boxes, strict=True):
        if box is not None:
            s, n = seam_sums(image, box, inset)
            total, count = total + s, count + n
    return total / count if count else None


def score(frames, outputs, moving, uses) -> dict:
    """Whole-frame and moving-region PSNR, channel uses per frame."""
    err = sum(float(((o.astype(np.float64) - f) ** 2)[m].sum())
              for f, o, m in zip(frames, outputs, moving, strict=True))
    count = sum(int(m.sum()) * 3 for m in moving)
    return {"psnr": round(float(np.mean([psnr(f, o) for f, o in zip(frames, outputs,
                                                                        strict=True)])), 2),
            "psnr_moving": round(psnr_from_mse(err / count), 2) if count else None,
            "channel_uses_per_frame": round(uses / len(frames), 1)}


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def evaluate_clip(name, path, start, kind, args, codec) -> dict:
    """Every method on one clip's window."""
    from dynbg.video import probe

    fps = probe(path).fps or 25.0
    frames = [f.image for f in read_frames(path, start=start, max_frames=args.frames)]
    moving = moving_masks(frames)
    base = SenderConfig(snr_db=args.snr, seed=args.seed)
    rcfg = ReceiverConfig(interp="off")
    direct_out, _, direct_uses, secs = run_chain(
        frames, fps, dataclasses.replace(base, mode="direct"), rcfg, codec)
    clip = {"clip": name, "path": str(path.relative_to(path.parents[1])), "kind": kind,
            "first_frame": start, "frames": len(frames),
            "moving_fraction": round(float(np.mean([m.mean() for m in moving])), 4),
            "methods": {"direct": {**score(frames, direct_out, moving, direct_uses),
                                   "channel_use_ratio": 1.0, "seconds": round(secs, 1)}}}
    runs = [(s, dataclasses.replace(base, segmenter=s), rcfg) for s in args.segmenters]
    # ablation against the defaults (feather paste, exposure gain): gain off, blend paste
    blend = dataclasses.replace(rcfg, paste="blend")
    runs.append(("selfie-nogain", dataclasses.replace(base, segmenter="selfie", exposure=False),
                 rcfg))
    runs.append(("selfie-blend", dataclasses.replace(base, segmenter="selfie"), blend))
    runs.append(("selfie-blend-nogain",
                 dataclasses.replace(base, segmenter="selfie", exposure=False), blend))
    for label, scfg, rc in runs:
        out, boxes, uses, secs = run_chain(frames, fps, scfg, rc, codec)
        border, direct = seam(out, boxes), seam(direct_out, boxes)
        row = {**score(frames, out, moving, uses),
               "channel_use_ratio": round(uses / direct_uses, 3),
               "seam_border": _r(border), "seam_inside": _r(seam(out, boxes, SEAM_INSET)),
               "seam_direct": _r(direct), "seam_original": _r(seam(frames, boxes)),
               "seam_ratio": _r(border / direct) if border is not None and direct else None,
               "frames_with_crop": sum(b is not None for b in boxes),
               "seconds": round(secs, 1)}
        d = clip["methods"]["direct"]
        row["moving_gap_db"] = (_r(row["psnr_moving"] - d["psnr_moving"])
                                if row["psnr_moving"] is not None else None)
        row["targets_met"] = {
            "moving_psnr": row["moving_gap_db"] is not None and row["moving_gap_db"] >= -0.5,
            "fewer_uses": row["channel_use_ratio"] < 1.0,
            "seam": row["seam_ratio"] is None or row["seam_ratio"] <= 1.10}
        clip["methods"][label] = row
        print(f"{name} {label}: {row}", file=sys.stderr, flush=True)
    return clip


def markdown(report: dict) -> str:
    """The report as a markdown table."""
    lines = [f"# Key information beyond people: SNR {report['snr_db']} dB AWGN, "
             f"{report['frames']} frames per clip", "",
             f"Command: `{report['command']}`", "",
             "| clip | method | PSNR dB | moving PSNR dB | vs direct dB | channel uses/frame "
             "| ratio | seam border | seam inside | seam direct | seam ratio | targets |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for clip in report["clips"]:
        for label, r in clip["methods"].items():
            met = r.get("targets_met")
            flag = "" if met is None else ("all met" if all(met.values()) else
                                           "missed: " + ", ".join(k for k, v in met.items()
                                                                  if not v))
            lines.append(f"| {clip['clip']} | {label} | {r['psnr']} | {r['psnr_moving']} | "
                         f"{r.get('moving_gap_db', '')} | {r['channel_uses_per_frame']} | "
                         f"{r['channel_use_ratio']} | {r.get('seam_border', '')} | "
                         f"{r.get('seam_inside', '')} | {r.get('seam_direct', '')} | "
                         f"{r.get('seam_ratio', '')} | {flag} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--snr", type=float, default=5.0, help="channel SNR in dB (default 5)")
    p.add_argument("--frames", type=int, default=60, help="frames per clip (default 60)")
    p.add_argument("--segmenters", default=",".join(SEGMENTERS),
                   help=f"comma-separated segmenters (default {','.join(SEGMENTERS)})")
    p.add_argument("--clips", default=",".join(c[0] for c in CLIPS),
                   help="comma-separated clip names (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the JSON report here")
    p.add_argument("--markdown", help="write the markdown table here")
    args = p.parse_args(argv)
    args.segmenters = [s for s in args.segmenters.split(",") if s]
    wanted = set(args.clips.split(","))
    unknown = wanted - {c[0] for c in CLIPS}
    if unknown:
        p.error(f"unknown clip(s) {sorted(unknown)}: choose from {[c[0] for c in CLIPS]}")
    codec = load_codec(SenderConfig.model, None, threads=2)
    report = {"snr_db": args.snr, "frames": args.frames, "seed": args.seed,
              "command": "bench/eval_keyinfo.py " + " ".join(argv or sys.argv[1:]),
              "moving_region": f"> {MOVING_LEVELS} levels from the window's temporal median "
                               "of the original frames", "clips": [], "skipped": []}
    for name, path, start, kind in CLIPS:
        if name not in wanted:
            continue
        if not path.is_file():
            report["skipped"].append(f"{name}: {path} not found")
            continue
        report["clips"].append(evaluate_clip(name, path, start, kind, args, codec))
    emit(report, args.json)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(markdown(report))


if __name__ == "__main__":
    main()
