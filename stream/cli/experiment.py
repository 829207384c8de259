"""``semstream experiment``: the offline sweep, baselines, base-station experiment, plots,
markdown report and (optionally) the README's results section, in one resumable command."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from jscc import DEFAULT_MODEL
from jscc.device_option import add_device_option
from stream.experiments.sweep import DEFAULT_METHODS


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
    p.add_argument("--channels", type=_names, default=("awgn", "fading", "jakes", "multicast"),
                   help="comma-separated (default awgn,fading,jakes,multicast): awgn (static, "
                   "SNR known); rayleigh (block fading, 64 symbols a block, h known to both); "
                   "fading (Rayleigh, one block per frame, the digital sender's MCS from the "
                   "SNR one frame old); jakes (the same, correlated: Jakes' model at 3 km/h, "
                   "2 GHz); multicast (one transmission to receivers at 0, 7, 13, 20 dB, "
                   "coded for the weakest; --snr does not apply)")
    p.add_argument("--methods", type=_names, default=DEFAULT_METHODS,
                   help="methods on awgn, comma-separated (default "
                   f"{','.join(DEFAULT_METHODS)}): direct, proposed, proposed-bg-jscc "
                   "(backgrounds through JSCC too), proposed-fg-latent, proposed-skip2, "
                   "proposed-fg-latent-skip2 (skip: every 2nd frame, RIFE on the foreground), "
                   "h264-capacity, h264-mcs (at proposed's channel uses), "
                   "h264-<capacity|mcs>@<jscc method> (at that method's channel uses)")
    p.add_argument("--channel-methods", type=_names, default=("proposed", "h264-mcs"),
                   help="methods on the other channels (default proposed,h264-mcs)")
    p.add_argument("--variants", type=_names, default=("video", "library"),
                   help="video (background built from the clip, V.B) and/or library "
                   "(pre-built library, V.A)")
    p.add_argument("--max-frames", type=int, default=60,
                   help="first N frames of each clip (default 60; 0 = all)")
    p.add_argument("--figure-snr", type=float, default=5.0,
                   help="SNR of the side-by-side frame figure (default 5)")
    p.add_argument("--weights", help="JSCC weights file (default: the shipped wide model; "
                        "jscc/weights/edge.pt is the faster one)")
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
    add_device_option(p)
    p.set_defaults(func=handle)


def handle(args) -> int:
    """Run the sweep and write everything; returns 0."""
    from jscc.device import announce
    from stream.experiments.sweep import DEFAULT_CLIPS, SweepConfig, run_sweep

    # on Ray each worker resolves --device itself (its GPU, not this machine's)
    device = args.device if args.ray else announce(args.device, "experiment")
    sweep = SweepConfig(clips=tuple(args.clips or DEFAULT_CLIPS), snrs=args.snr,
                        channels=args.channels, methods=args.methods,
                        channel_methods=args.channel_methods, variants=args.variants,
                        max_frames=args.max_frames or None, figure_snr=args.figure_snr,
                        seed=args.seed, weights=args.weights, workers=args.workers,
                        ray_address=args.ray,
                        device=device, precision=args.precision)
    if args.readme is not None and not args.readme.is_file():
        raise FileNotFoundError(f"README not found: {args.readme}")
    result = run_sweep(sweep, args.out, progress=not args.no_progress)
    basestation = None
    if not args.no_basestation:
        from stream.experiments.basestation import (
            BaseStationConfig,
            measured_inputs,
            run_basestation,
        )

        measured = measured_inputs(result.rows)
        if measured is None:
            print("semstream experiment: no base-station experiment: it takes alpha and the "
                  "key fraction from proposed and direct on awgn, and the sweep has no such "
                  "pair", file=sys.stderr)
        else:
            alpha, fraction, source = measured
            basestation = {**run_basestation(BaseStationConfig(
                users=args.bs_users, trials=args.bs_trials, alpha=alpha,
                key_fraction=fraction)), "source": source}
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

    from stream.experiments import plots
    from stream.experiments.report import (
        ReportInputs,
        markdown_report,
        readme_section,
        update_readme,
    )
    from stream.experiments.sweep import (
        cell_path,
        clip_name,
        figure_frame,
        library_dir,
        library_source,
        write_json,
    )

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
        figures[f"psnr ({channel})"] = plots.psnr_vs_snr(sel, out / f"psnr-{channel}.png")
    awgn = [r for r in rows if r["channel"] == "awgn"]
    if awgn:
        figures["psnr vs channel uses (awgn)"] = plots.psnr_vs_channel_uses(
            awgn, out / "psnr-vs-channel-uses.png")
        figures["channel uses (awgn)"] = plots.channel_uses(
            [r for r in awgn if r["budget_of"] is None], out / "channel-uses-awgn.png")
    timeline = _timeline(sweep, out)
    if timeline is not None:
        series, title = timeline
        figures["psnr vs time"] = plots.psnr_vs_time(series, out / "psnr-vs-time.png", title)
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
    sources = {s for c in sweep.clips if "library" in sweep.variants
               and (s := library_source(sweep, c)) is not None}
    libraries = {f"from {s.description}": sorted(library_dir(out, s).glob("bg-*.png"))[:4]
                 for s in sources}
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


def _timeline(sweep, out: Path) -> tuple[dict, str] | None:
    """Per-frame rows of proposed and H.264 + MCS on the first clip at ``figure_snr`` on
    the first fading channel swept (per-frame fading first), and the plot's title."""
    import json

    from stream.experiments.sweep import Cell, cell_path, clip_name

    channel = next((c for c in ("fading", "jakes") if c in sweep.channels), None)
    if channel is None:
        return None
    series = {}
    for method in ("proposed", "h264-mcs"):
        path = cell_path(out, Cell(sweep.clips[0], method, channel, float(sweep.figure_snr)))
        if path.is_file():
            series[method] = json.loads(path.read_text())["report"].get("rows", [])
    if not series:
        return None
    return series, (f"{clip_name(sweep.clips[0])}, {channel} at mean SNR "
                    f"{sweep.figure_snr:g} dB: frame PSNR against time")


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
    from stream.experiments.sweep import MULTICAST_SNRS, clip_name, library_source

    libraries = {}
    if "library" in sweep.variants:
        for c in sweep.clips:
            source = library_source(sweep, c)
            libraries[clip_name(c)] = source.description if source else "none (no cells)"
    return {"clips": [Path(c).name for c in sweep.clips], "snrs": list(sweep.snrs),
            "multicast_snrs": list(MULTICAST_SNRS), "libraries": libraries,
            "channels": list(sweep.channels), "methods": list(sweep.methods),
            "channel_methods": list(sweep.channel_methods),
            "variants": list(sweep.variants), "max_frames": sweep.max_frames,
            "weights": sweep.weights or f"shipped {DEFAULT_MODEL} model", "seed": sweep.seed,
            "cells": len(result.rows), "computed": computed, "wall_seconds": wall,
            "wall_seconds_full": full,
            "executor": f"ray at {sweep.ray_address}" if sweep.ray_address
            else f"{sweep.workers} local processes"}
