"""Issue 15's rate targets for temporal coding: what it buys against plain proposed mode.

For each clip and SNR (AWGN), the offline chain of ``semstream run``
(``stream.experiments.run``) runs once in plain proposed mode, which gives U, its channel
uses per frame for the crops' symbols and side information (backgrounds apart), and then
with temporal coding at budgets of ``f * U`` per frame for each fraction f of
``--fractions``. Targets (issue 15): at f = 1/2 (and 1/4, the moonshot) whole-frame and
foreground PSNR at least plain proposed's; at f = 1, +2 dB whole-frame PSNR. Backgrounds
are sent the same way in both (same digital link, same segment logic), so their channel
uses are reported but not budgeted. The clips are the ASL samples of the sweep; nothing is
tuned on them (TemporalConfig's defaults). Usage:
``nice -n 5 .venv/bin/python bench/bench_temporal_tradeoff.py
--json docs/results/stream/temporal-tradeoff.json``

``--drift-weights 1,10,100`` runs every budget at each drift weight (TemporalConfig's
``drift_weight``), ``--level-rooms 1.1,1.4,1.7`` at each level room (``level_room``: how
high a rate level the budget buys); tune them on a clip that is not an evaluation clip,
e.g. ``--clips carphone.mp4 --frames 0 --fractions 1,0.75,0.5``, never on the ASL clips.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from jsonreport import emit  # noqa: E402

from stream.core.config import ReceiverConfig, SenderConfig, TemporalConfig  # noqa: E402
from stream.experiments import run  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CLIPS = ("asl-again.mkv", "asl-help.mkv", "asl-please.mkv", "asl-walk.mkv", "asl-yes.mkv")


def frame_uses(report: dict) -> float:
    """Channel uses per frame of a run's crops and side information (backgrounds apart)."""
    uses = report["channel_uses"]
    return (uses["frames"] + uses["side_info"]) / report["frames"]


def one_run(video: Path, snr: float, frames: int | None,
            temporal: TemporalConfig | None, weights: Path | None = None) -> dict:
    """The figures of one offline run of ``video`` at ``snr`` dB (AWGN), with the shipped
    default model or ``weights``."""
    config = run.RunConfig(
        sender=SenderConfig(snr_db=snr, channel="awgn", mode="proposed", temporal=temporal,
                            device="cpu", weights=weights),
        receiver=ReceiverConfig(interp="off", device="cpu", weights=weights),
        max_frames=frames)
    report = run.run_video(video, config)
    return {"psnr": round(report["psnr_mean"], 3), "psnr_fg": round(report["psnr_fg_mean"], 3),
            "frame_uses_per_frame": round(frame_uses(report), 1),
            "channel_uses_per_frame": round(report["channel_uses_per_frame"], 1),
            "frames_delivered": report["frames_delivered"], "frames": report["frames"]}


def setting_key(drift_weight: float, level_room: float | None) -> str:
    """The key of one TemporalConfig setting in the JSON."""
    room = "policy" if level_room is None else f"{level_room:g}"
    return f"drift_weight={drift_weight:g},level_room={room}"


def level_room(text: str) -> float | None:
    """A ``--level-rooms`` entry: a number of budgets, or ``policy`` (None)."""
    return None if text == "policy" else float(text)


def summarise(points: list[dict], fractions: list[float], setting: str) -> list[dict]:
    """Per budget fraction at ``setting`` (``setting_key``): mean PSNR differences
    (temporal - plain, dB) over the points, the worst point, and the mean ratio of channel
    uses (all, backgrounds included)."""
    out = []
    for f in fractions:
        runs = [(p["plain"], p["temporal"][setting][str(f)]) for p in points]
        d = [t["psnr"] - b["psnr"] for b, t in runs]
        dfg = [t["psnr_fg"] - b["psnr_fg"] for b, t in runs]
        out.append({"fraction": f,
                    "psnr_gain_mean_db": round(statistics.fmean(d), 3),
                    "psnr_gain_min_db": round(min(d), 3),
                    "psnr_fg_gain_mean_db": round(statistics.fmean(dfg), 3),
                    "psnr_fg_gain_min_db": round(min(dfg), 3),
                    "channel_uses_ratio_mean": round(statistics.fmean(
                        t["channel_uses_per_frame"] / b["channel_uses_per_frame"]
                        for b, t in runs), 3)})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", default=",".join(CLIPS), help="sample clips, comma-separated")
    p.add_argument("--snrs", default="0,10,20", help="dB, comma-separated")
    p.add_argument("--fractions", default="1,0.5,0.25",
                   help="temporal budgets as fractions of plain proposed's frame uses")
    p.add_argument("--drift-weights", default=f"{TemporalConfig.drift_weight:g}",
                   help="TemporalConfig drift weights, comma-separated (default: the default)")
    p.add_argument("--level-rooms", default="policy",
                   help="TemporalConfig level rooms, comma-separated numbers or 'policy' "
                        "(the policy's level, the default)")
    p.add_argument("--weights", type=Path,
                   help="JSCC weights file for both ends (default: the shipped default)")
    p.add_argument("--frames", type=int, default=60,
                   help="frames per clip (the sweep's 60; 0 = all)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    fractions = [float(f) for f in args.fractions.split(",")]
    settings = {setting_key(float(w), level_room(r)): (float(w), level_room(r))
                for w in args.drift_weights.split(",") for r in args.level_rooms.split(",")}
    frames = args.frames or None
    load, started, points = os.getloadavg(), time.perf_counter(), []
    for clip in args.clips.split(","):
        for snr in (float(s) for s in args.snrs.split(",")):
            plain = one_run(SAMPLES / clip, snr, frames, None, args.weights)
            budget = plain["frame_uses_per_frame"]
            temporal = {key: {str(f): one_run(SAMPLES / clip, snr, frames, TemporalConfig(
                budget=f * budget, drift_weight=w, level_room=r), args.weights)
                for f in fractions}
                for key, (w, r) in settings.items()}
            points.append({"clip": clip, "snr_db": snr, "plain": plain, "temporal": temporal})
            for key, runs in temporal.items():
                print(f"{clip} {snr:g} dB: plain {plain['psnr']:.2f} dB, temporal ({key}) "
                      + ", ".join(f"{f:g}U {t['psnr']:.2f}" for f, t in zip(
                          fractions, runs.values(), strict=True)), file=sys.stderr)
    by_setting = {key: summarise(points, fractions, key) for key in settings}
    first = next(iter(settings))
    summary = by_setting[first]
    half = next((s for s in summary if s["fraction"] == 0.5), None)
    full = next((s for s in summary if s["fraction"] == 1.0), None)
    emit({
        "bench": "temporal-tradeoff",
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "channel": "awgn", "frames_per_clip": args.frames,
        "jscc_model": str(args.weights) if args.weights else SenderConfig().model,
        "temporal_config": {"threshold": TemporalConfig.threshold,
                            "drift_weight": settings[first][0],
                            "level_room": settings[first][1],
                            "refresh": TemporalConfig.refresh},
        "summary": summary,  # at the first setting; the targets below too
        "summary_by_setting": by_setting,
        "targets": {
            "half_uses_no_loss": None if half is None else {
                "target": "at 1/2 of plain's frame uses, PSNR and fg PSNR >= plain's at every "
                          "point", "met": half["psnr_gain_min_db"] >= 0
                and half["psnr_fg_gain_min_db"] >= 0},
            "plus_2_db_at_equal_uses": None if full is None else {
                "target": "at plain's frame uses, mean whole-frame PSNR >= plain's + 2 dB",
                "met": full["psnr_gain_mean_db"] >= 2.0}},
        "points": points,
        "seconds": round(time.perf_counter() - started, 1),
        "load_average_at_start": [round(v, 2) for v in load], "cpu_count": os.cpu_count(),
    }, args.json)


if __name__ == "__main__":
    main()
