"""Benchmark of ``semstream live``: the whole demo in real time on this machine, watched by
a real headless Chromium (tests/browser.py's harness, in a loopback-only network namespace
where one can be made); writes a JSON report.

- live: ``semstream live samples/asl-again.mkv --loop`` (live defaults, or the options
  given after ``--``) for --seconds after --warmup: frames/s shown by the page (frames it
  presented, requestVideoFrameCallback), frames dropped in all (of the frames the clip
  has in the window at its 30 frames/s, those the page was not sent: dropped by a stage or
  never read because the source fell behind), glass-to-glass latency (capture to the page's
  display time) median / p90 and its growth (median of the last 10 s minus the first 10 s),
  both ends' per-stage times and drops from their reports;
- stages: what each step costs alone on one core (torch 1 thread), frame by frame on the
  same clip: segmenter, ORB scene check, change mask, crop, JSCC encode + channel, wire,
  JSCC decode, paste-back (feather and blend), PSNR, VP8 encode of the viewer's track;
- targets (issue 17): >= 27 frames/s shown, <= 10 % dropped, median glass-to-glass
  < 150 ms, no growth (< 50 ms): each says met or not, and the report names the stage
  with the largest share of the CPU time per frame.

    .venv/bin/python bench/bench_live.py --seconds 60 --json docs/results/stream/live.json
    .venv/bin/python bench/bench_live.py --seconds 20 -- --skip 2 --interp dis
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLIP = ROOT / "samples" / "asl-again.mkv"
TARGETS = {"fps_shown_min": 27.0, "dropped_max": 0.10, "glass_to_glass_ms_median_max": 150.0,
           "latency_growth_ms_max": 50.0}


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1)


# --- the live run ------------------------------------------------------------------------

def _live_config(extra: list[str]):
    """LiveConfig from `semstream live` options (the CLI's own parser and defaults)."""
    from stream.cli import build_parser
    from stream.cli.live import live_config

    return live_config(build_parser().parse_args(["live", str(CLIP), "--loop", "--view", "0",
                                                  *extra]))


async def live_run(extra: list[str], warmup: float, seconds: float) -> dict:
    """Run the demo with a Chromium page on it; the window's figures and both reports."""
    from stream.net.demo import run_live
    from tests.browser import browser_page

    config = _live_config(extra)
    ready: asyncio.Future = asyncio.get_running_loop().create_future()
    demo = asyncio.ensure_future(run_live(config, log=open(os.devnull, "w"),
                                          ready=lambda url, viewer: ready.set_result(
                                              (url, viewer))))
    url, viewer = await asyncio.wait_for(ready, 120)
    out: dict = {"options": extra, "warmup_s": warmup, "seconds": seconds}
    async with browser_page() as page:
        await page.goto(url)
        await page.wait_for_function("window.semstream.presented >= 5", timeout=90_000)
        await asyncio.sleep(warmup)

        async def snapshot() -> dict:
            live = await page.evaluate("window.semstream.live")
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return {"t": time.monotonic(), "cpu_s": usage.ru_utime + usage.ru_stime,
                    "load": os.getloadavg()[0],
                    "presented": await page.evaluate("window.semstream.presented"),
                    "sender_read": (live or {}).get("sender", {}).get("frames_read"),
                    "viewer_out": viewer.frames_out, "displayed": len(viewer.displayed)}

        first = await snapshot()
        samples = []
        end = first["t"] + seconds
        while time.monotonic() < end:
            await asyncio.sleep(1.0)
            samples.append(await page.evaluate("window.semstream.live.window"))
        last = await snapshot()
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: the sender ends its source and says bye
    sent, received = await asyncio.wait_for(demo, 60)
    span = last["t"] - first["t"]
    shown = [lat for cap, lat in list(viewer.displayed) if cap >= time.time() - span - 5]
    window = list(viewer.displayed)[first["displayed"]:last["displayed"]]
    latencies = [1000 * lat for _, lat in window]
    tenth = [1000 * lat for cap, lat in window if cap <= window[0][0] + 10] if window else []
    last10 = [1000 * lat for cap, lat in window if cap >= window[-1][0] - 10] if window else []
    read = None if last["sender_read"] is None or first["sender_read"] is None \
        else last["sender_read"] - first["sender_read"]
    sent_to_page = last["viewer_out"] - first["viewer_out"]
    del shown
    expected = round(_clip_fps() * span)  # what the source should have read in real time
    out["window"] = {
        "fps_shown": round((last["presented"] - first["presented"]) / span, 2),
        "frames_expected": expected,
        "cores_used_by_the_demo": round((last["cpu_s"] - first["cpu_s"]) / span, 2),
        "load_average_1min": [first["load"], last["load"]],
        "fps_sent_to_page": round(sent_to_page / span, 2),
        "frames_read_by_sender": read,
        "dropped_fraction": round(max(0, expected - sent_to_page) / expected, 3),
        "dropped_after_read_fraction": None if not read
        else round(max(0, read - sent_to_page) / read, 3),
        "glass_to_glass_ms_median": _median(latencies),
        "glass_to_glass_ms_p90": _p90(latencies),
        "latency_growth_ms": None if not tenth or not last10
        else round(statistics.median(last10) - statistics.median(tenth), 1),
        "psnr_mean": _mean([s.get("psnr") for s in samples if s]),
        "channel_uses_per_frame": [s.get("channel_uses_per_frame") for s in samples[-1:] if s],
    }
    out["sender"] = {k: sent.get(k) for k in ("frames_read", "frames_sent", "frames_dropped",
                                             "latency_ms_median", "stages")}
    out["receiver"] = {k: received.get(k) for k in ("frames_delivered", "frames_dropped",
                                                   "latency_ms_median", "stages",
                                                   "interp_method", "interp_note")}
    return out


def _clip_fps() -> float:
    from dynbg.video import probe

    return probe(CLIP).fps


def _mean(values: list) -> float | None:
    finite = [v for v in values if isinstance(v, int | float)]
    return round(sum(finite) / len(finite), 2) if finite else None


# --- per-stage costs ---------------------------------------------------------------------

def stage_costs(frames: int = 60, precision: str = "auto", model: str = "edge") -> dict:
    """Median ms of each step alone (torch 1 thread), frame by frame on the clip, with the
    shipped JSCC weights ``model``."""
    import fractions

    import av
    import torch
    from aiortc.codecs.vpx import Vp8Encoder

    import stream.core.sender as sender_module
    from dynbg.blend import BlendConfig, blend_paste
    from dynbg.keyinfo import CropRecord, paste_back
    from dynbg.video import read_frames
    from stream.core import wire
    from stream.core.config import (
        LIVE_BACKGROUND_CODECS,
        LIVE_MAX_PIXELS,
        LIVE_SYMBOLS,
        ReceiverConfig,
        SenderConfig,
    )
    from stream.core.frames import Frame
    from stream.core.receiver import ReceiverCore
    from stream.core.sender import SenderCore
    from stream.net.demo import frame_psnr

    times: dict[str, list[float]] = {}

    def timed(name, fn):
        def run(*a, **k):
            t = time.perf_counter()
            result = fn(*a, **k)
            times.setdefault(name, []).append(1000 * (time.perf_counter() - t))
            return result
        return run

    config = SenderConfig(max_pixels=LIVE_MAX_PIXELS, symbols=LIVE_SYMBOLS,
                          background_codecs=LIVE_BACKGROUND_CODECS, device="cpu",
                          precision=precision, model=model)
    tx = SenderCore(config)
    rx = ReceiverCore(ReceiverConfig(interp="off", paste="feather", device="cpu",
                                     precision=precision, model=model))
    torch.set_num_threads(1)
    rx.start(wire.SessionParams(640, 480, 30.0))
    tx.segmenter.binary = timed("segmenter", tx.segmenter.binary)
    tx.scenes.update = timed("scene_check_orb", tx.scenes.update)
    changed = sender_module.changed_mask
    sender_module.changed_mask = timed("change_mask", changed)
    extract = sender_module.extract
    sender_module.extract = timed("crop", extract)
    encoder = Vp8Encoder()  # what the viewer's track runs through (aiortc's own settings)
    packer, unpacker = wire.Packer(), wire.Unpacker()
    clip = [f.image for f in read_frames(CLIP, max_frames=frames)]
    try:
        for i, image in enumerate(clip):
            analysis = timed("analyse_total", tx.analyse)(Frame(image, i, i / 30, time.time()))
            out = timed("jscc_encode_and_channel", tx.encode)(analysis)
            received = []
            for msg in out.messages:
                for packet in timed("wire_pack", packer.pack)(msg):
                    done = unpacker.feed(packet)
                    if done is not None:
                        received.append(done)
            for msg in received:
                decoded = timed("jscc_decode", rx.decode)(msg)
                for frame in timed("compose_feather", rx.compose)(decoded):
                    timed("psnr_whole_and_fg", lambda a, b, m: (frame_psnr(a, b),
                          frame_psnr(a, b, m)))(image, frame.image, analysis.mask)
                    video = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
                    video.pts, video.time_base = i * 3000, fractions.Fraction(1, 90_000)
                    timed("vp8_encode_per_track", encoder.encode)(video)
                    if analysis.key is not None and decoded.background is not None and \
                            len(times.get("paste_blend", [])) < 5:
                        r = analysis.key.record
                        crop = image[r.y1:r.y2, r.x1:r.x2]
                        record = CropRecord(r.x1, r.y1, r.x2, r.y2, 640, 480,
                                            crop.shape[1], crop.shape[0])
                        timed("paste_blend", blend_paste)(decoded.background, crop, record,
                                                          None, BlendConfig())
                        timed("paste_feather", paste_back)(decoded.background, crop, record)
    finally:
        tx.close()
    skip = 5  # warm-up frames
    return {name: {"ms_median": _median(v[skip:] if len(v) > skip + 3 else v), "n": len(v)}
            for name, v in times.items()}


def _verdict(report: dict) -> dict:
    w = report["live"]["window"]
    checks = {
        "fps_shown": (w["fps_shown"], w["fps_shown"] >= TARGETS["fps_shown_min"]),
        "dropped_fraction": (w["dropped_fraction"], w["dropped_fraction"] is not None
                             and w["dropped_fraction"] <= TARGETS["dropped_max"]),
        "glass_to_glass_ms_median": (w["glass_to_glass_ms_median"],
                                     w["glass_to_glass_ms_median"] is not None
                                     and w["glass_to_glass_ms_median"]
                                     < TARGETS["glass_to_glass_ms_median_max"]),
        "latency_growth_ms": (w["latency_growth_ms"], w["latency_growth_ms"] is not None
                              and w["latency_growth_ms"] < TARGETS["latency_growth_ms_max"]),
    }
    costs = report.get("stages_alone_ms", {})
    steps = ("segmenter", "scene_check_orb", "change_mask", "crop", "jscc_encode_and_channel",
             "jscc_decode", "compose_feather", "psnr_whole_and_fg", "vp8_encode_per_track")
    per_frame = {s: costs[s]["ms_median"] for s in steps if s in costs}
    return {"targets": {k: {"value": v, "met": ok} for k, (v, ok) in checks.items()},
            "cpu_ms_per_frame_by_step": per_frame,
            "largest_step": max(per_frame, key=per_frame.get) if per_frame else None}


def main() -> int:
    from tests.browser import NETNS, netns_available, playwright_missing

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--json", type=Path, default=ROOT / "out" / "bench_live.json")
    parser.add_argument("--no-stages", action="store_true", help="skip the per-stage costs")
    parser.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("extra", nargs="*", help="semstream live options (after --)")
    args = parser.parse_args()
    missing = playwright_missing()
    if missing:
        print(f"bench_live: {missing}", file=sys.stderr)
        return 2
    if not args.in_netns and netns_available():  # run again inside a loopback-only netns
        command = NETNS + [sys.executable, str(Path(__file__).resolve()), "--in-netns",
                           *sys.argv[1:]]
        return subprocess.run(command, cwd=ROOT).returncode
    import torch

    from jscc.device import jscc_precision
    from stream.core.config import LIVE_MODEL

    # the JSCC model and arithmetic the live options ask for (as `semstream live` reads them)
    live_options = argparse.ArgumentParser(add_help=False)
    live_options.add_argument("--precision", default="auto")
    live_options.add_argument("--model", default=LIVE_MODEL)
    chosen = live_options.parse_known_args(args.extra)[0]
    precision = chosen.precision
    report: dict = {"clip": str(CLIP.relative_to(ROOT)), "targets": TARGETS,
                    "netns": args.in_netns, "load_average_at_start": os.getloadavg(),
                    "jscc_model": chosen.model,
                    "jscc_precision": jscc_precision(torch.device("cpu"), precision)}
    report["live"] = asyncio.run(live_run(args.extra, args.warmup, args.seconds))
    report["load_average_at_end"] = os.getloadavg()
    if not args.no_stages:
        report["stages_alone_ms"] = stage_costs(precision=precision, model=chosen.model)
    report["verdict"] = _verdict(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(json.dumps({"window": report["live"]["window"], **report["verdict"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
