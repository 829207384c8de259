"""``semstream experiment``: the offline sweep, baselines, base-station experiment, plots,
markdown report and (optionally) the README's results section, in one resumable command."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas: {text}") from exc


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def register(sub) -> None:
    """Add ``semstream experiment`` to the subparsers."""
    p = sub.add_parser("experiment", help="offline sweeps over clips, methods, SNRs; plots, "
                       "report, README results",
                       description="Sweep clip x method x channel x SNR x variant (resumable: "
                       "finished cells in OUT/cells are not recomputed), run the base-station "
                       "experiment, and write rows (CSV/JSON), PNG plots and OUT/report.md.")
    p.add_argument("--out", type=Path, default=Path("docs/results/experiments"),
                   help="output folder (default docs/results/experiments)")
    p.add_argument("--clips", nargs="+", metavar="PATH[@START]",
                   help="video files, each optionally from frame START (default: the 5 ASL "
                   "samples and one-by-one-person.mp4@60, where a person walks in)")
    p.add_argument("--snr", type=_floats, default=(0.0, 5.0, 10.0, 15.0, 20.0),
                   help="SNRs in dB, comma-separated (default 0,5,10,15,20)")
    p.add_argument("--channels", type=_names, default=("awgn",), help="awgn,rayleigh")
    p.add_argument("--methods", type=_names,
                   default=("direct", "proposed", "proposed-fg-latent", "h264-capacity",
                            "h264-mcs"),
                   help="comma-separated: direct, proposed, proposed-fg-latent, "
                   "proposed-skip2, proposed-fg-latent-skip2 (skip: every 2nd frame, RIFE on "
                   "the foreground), h264-capacity, h264-mcs")
    p.add_argument("--variants", type=_names, default=("video", "library"),
                   help="video (background built from the clip, V.B) and/or library "
                   "(pre-built library, V.A)")
    p.add_argument("--max-frames", type=int, default=60,
                   help="first N frames of each clip (default 60; 0 = all)")
    p.add_argument("--figure-snr", type=float, default=5.0,
                   help="SNR of the side-by-side frame figure (default 5)")
    p.add_argument("--weights", help="JSCC weights file (default: the shipped edge model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="local processes (default 2)")
    p.add_argument("--ray", metavar="ADDRESS", help="run the cells on this Ray cluster "
                   "(e.g. auto or ray://host:10001; needs semstream[ray])")
    p.add_argument("--no-basestation", action="store_true",
                   help="skip the base-station experiment")
    p.add_argument("--bs-users", type=int, default=8, help="base-station users (default 8)")
    p.add_argument("--bs-trials", type=int, default=100,
                   help="base-station random trials (default 100)")
    p.add_argument("--readme", type=Path, help="rewrite this README's results section")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=handle)


def handle(args) -> int:
    """Run the sweep and write everything; returns 0."""
    from stream.experiment import DEFAULT_CLIPS, SweepConfig, run_sweep

    sweep = SweepConfig(clips=tuple(args.clips or DEFAULT_CLIPS), snrs=args.snr,
                        channels=args.channels, methods=args.methods, variants=args.variants,
                        max_frames=args.max_frames or None, figure_snr=args.figure_snr,
                        seed=args.seed, weights=args.weights, workers=args.workers,
                        ray_address=args.ray)
    if args.readme is not None and not args.readme.is_file():
        raise FileNotFoundError(f"README not found: {args.readme}")
    result = run_sweep(sweep, args.out, progress=not args.no_progress)
    basestation = None
    if not args.no_basestation:
        from stream.basestation_experiment import BaseStationConfig, run_basestation

        basestation = run_basestation(BaseStationConfig(users=args.bs_users,
                                                        trials=args.bs_trials))
    command = "semstream " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["experiment"] \
        else "semstream experiment " + f"--out {shlex.quote(str(args.out))}"
    report = publish(sweep, result, Path(args.out), basestation, command, args.readme)
    print(f"semstream experiment: {len(result.rows)} cells ({result.computed} computed) in "
          f"{result.wall_seconds:.0f} s; report {report}")
    return 0


def publish(sweep, result, out: Path, basestation: dict | None, command: str,
            readme: Path | None) -> Path:
    """Write rows.csv/rows.json, sweep.json, basestation.json, the plots and report.md
    into ``out`` (and the README section when ``readme``); returns the report's path."""
    import csv

    from stream import plots
    from stream.experiment import cell_path, clip_name, figure_frame, library_dir, write_json
    from stream.report import ReportInputs, markdown_report, readme_section, update_readme

    rows = result.rows
    write_json(out / "rows.json", rows)
    with (out / "rows.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    meta = _meta(sweep, result, out)
    write_json(out / "sweep.json", meta)
    figures = {}
    for channel in sweep.channels:
        sel = [r for r in rows if r["channel"] == channel]
        for name, fn in (("psnr", plots.psnr_vs_snr), ("channel-uses", plots.channel_uses),
                         ("compression", plots.compression)):
            figures[f"{name} ({channel})"] = fn(sel, out / f"{name}-{channel}.png")
    frames = {}
    cells = [c for c in sweep.cells() if c.variant == "video" and c.snr == sweep.figure_snr
             and c.channel == sweep.channels[0]]
    for c in cells:
        png = out / "frames" / f"{c.key}.png"
        if png.is_file() and cell_path(out, c).is_file():
            stem = clip_name(c.clip)
            original = out / "frames" / f"{stem}__original.png"
            frames.setdefault(stem, {"original": original} if original.is_file() else {})
            frames[stem][c.method] = png
    if frames:
        figures["frames"] = plots.side_by_side(
            frames, out / "frames.png",
            f"Frame {figure_frame(sweep)} rebuilt at {sweep.figure_snr:g} dB ({sweep.channels[0]})")
    libraries = {clip_name(c): sorted(library_dir(out, c).glob("bg-*.png"))[:4]
                 for c in sweep.clips}
    libraries = {k: v for k, v in libraries.items() if v}
    if libraries:
        figures["backgrounds"] = plots.backgrounds(libraries, out / "backgrounds.png")
    if basestation is not None:
        write_json(out / "basestation.json", basestation)
        figures["base station"] = plots.basestation(basestation, out / "basestation.png")
    inputs = ReportInputs(rows, meta, figures, basestation, command)
    report = out / "report.md"
    report.write_text(markdown_report(inputs, out))
    if readme is not None:
        update_readme(readme, readme_section(inputs, readme.resolve().parent, report.resolve()))
    return report


def _meta(sweep, result, out: Path) -> dict:
    """Facts of the sweep. ``computed``/``wall_seconds`` describe the last run that computed
    any cell (a run that only re-publishes keeps them); the wall time of a run that
    computed every cell is kept across later runs as ``wall_seconds_full``."""
    import json

    old = out / "sweep.json"
    last = json.loads(old.read_text()) if old.is_file() else {}
    full = last.get("wall_seconds_full")
    if result.computed == len(result.rows):
        full = result.wall_seconds
    computed, wall = result.computed, round(result.wall_seconds, 1)
    if not computed and last.get("computed"):
        computed, wall = last["computed"], last["wall_seconds"]
    return {"clips": [Path(c).name for c in sweep.clips], "snrs": list(sweep.snrs),
            "channels": list(sweep.channels), "methods": list(sweep.methods),
            "variants": list(sweep.variants), "max_frames": sweep.max_frames,
            "weights": sweep.weights or "shipped edge model", "seed": sweep.seed,
            "cells": len(result.rows), "computed": computed, "wall_seconds": wall,
            "wall_seconds_full": full,
            "executor": f"ray at {sweep.ray_address}" if sweep.ray_address
            else f"{sweep.workers} local processes"}
