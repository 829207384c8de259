"""Benchmark of the streaming pipeline; prints a JSON report (and writes it with --json).

- sender: frames/s and per-stage ms (analyse = mask + scene + background + crop;
  encode = JSCC + channel) at the clip's size, the two stages overlapped in threads as in
  ``semstream send``, every frame processed;
- receiver: output frames/s and per-stage ms (decode = JSCC; compose = paste-back and
  interpolation) with skip 2 and interpolation on;
- latency: a live loopback session (WebRTC on 127.0.0.1, the clip looped in real time at
  30 fps for --latency-seconds): capture time to rebuilt frame written, median and growth;
- channel uses per frame by mode (direct, proposed, proposed + fg-latent) on the clip and
  on a surveillance clip, with the key/direct share and the compression ratio.

Targets (issue 7, this 2-core machine): sender 30 fps; receiver 30 fps with interpolation
on at skip 2; median latency < 150 ms with no growth; key-mode uses <= crop share x direct.

    .venv/bin/python bench/bench_stream.py --json out/bench_stream.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stream.core import wire  # noqa: E402
from stream.core.config import (  # noqa: E402
    LIVE_BACKGROUND_CODECS,
    LIVE_LATE_FALLBACK,
    LIVE_MAX_PIXELS,
    LIVE_SYMBOLS,
    PipelineConfig,
    ReceiverConfig,
    SenderConfig,
)
from stream.core.frames import Frame  # noqa: E402
from stream.core.pipeline import Pipeline, Stage  # noqa: E402

TARGETS = {"sender_fps": 30.0, "receiver_fps": 30.0, "latency_ms_median": 150.0}


def _frames(path: Path, n: int) -> list[Frame]:
    from dynbg.video import read_frames

    return [Frame(f.image, f.index, f.pts, 0.0) for f in read_frames(path, max_frames=n)]


async def _list_source(items: list):
    for item in items:
        yield item


def bench_sender(frames: list[Frame], config: SenderConfig) -> tuple[dict, list]:
    """Sender throughput with its two stages overlapped; returns (report, messages)."""
    from stream.core.sender import SenderCore

    core = SenderCore(config)
    h, w = frames[0].image.shape[:2]
    core.warm_up(w, h)
    messages: list = []
    pipe = Pipeline([Stage("analyse", core.analyse),
                     Stage("encode", lambda a: messages.extend(core.encode(a).messages))],
                    PipelineConfig(realtime=False, queue_size=2))
    t0 = time.perf_counter()
    asyncio.run(pipe.run(_list_source(frames)))
    seconds = time.perf_counter() - t0
    core.close()
    return {"frames": len(frames), "fps": round(len(frames) / seconds, 2),
            "stages": pipe.stats()["stages"], "size": [w, h], "skip": config.skip}, messages


def bench_receiver(messages: list, size: tuple[int, int], skip: int,
                   config: ReceiverConfig) -> dict:
    """Receiver output frames/s for the sender's messages (decode and compose overlapped)."""
    from stream.core.receiver import ReceiverCore

    core = ReceiverCore(config)
    core.start(wire.SessionParams(size[0], size[1], 30.0, skip))
    core.warm_up(*size)
    outputs = []
    pipe = Pipeline([Stage("decode", core.decode), Stage("compose", core.compose),
                     Stage("output", outputs.append, threaded=False)],
                    PipelineConfig(realtime=False, queue_size=2))
    t0 = time.perf_counter()
    asyncio.run(pipe.run(_list_source(messages)))
    seconds = time.perf_counter() - t0
    modes: dict = {}
    for o in outputs:
        modes[o.mode] = modes.get(o.mode, 0) + 1
    return {"frames_out": len(outputs), "fps": round(len(outputs) / seconds, 2),
            "interp": config.interp, "interp_scale": config.interp_scale, "skip": skip,
            "interp_method_at_end": core.interp_method, "interp_note": core.interp_note,
            "output_modes": modes,
            "stages": pipe.stats()["stages"]}


def bench_latency(clip: Path, config: SenderConfig, seconds: float,
                  receiver: ReceiverConfig) -> dict:
    """Live loopback session between a ``semstream receive`` and a ``semstream send``
    process (as a user runs them: two processes sharing this machine's cores); the
    receiver's latency figures (capture to rebuilt frame written) and both sides' drops."""
    import socket
    import subprocess
    import tempfile

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cli = [sys.executable, "-m", "stream.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        rjson, sjson, rlog = Path(tmp, "rx.json"), Path(tmp, "tx.json"), Path(tmp, "rx.log")
        rx = subprocess.Popen([*cli, "receive", "--listen", f"127.0.0.1:{port}", "--token",
                               "bench", "--interp", receiver.interp, "--interp-scale",
                               str(receiver.interp_scale), "--late-fallback",
                               receiver.late_fallback or "none", "--json", str(rjson)],
                              cwd=ROOT, stdout=rlog.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while "listening on" not in rlog.read_text():
            if rx.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"semstream receive did not start: {rlog.read_text()[-500:]}")
            time.sleep(0.2)
        subprocess.run([*cli, "send", str(clip), "--to", f"127.0.0.1:{port}", "--token",
                        "bench", "--loop", "--max-frames", str(int(seconds * 30)), "--snr",
                        f"{config.snr_db:g}", "--max-pixels", str(config.max_pixels),
                        "--skip", str(config.skip), "--json", str(sjson)],
                       cwd=ROOT, check=True, capture_output=True)
        rx.wait(120)
        got, sent = json.loads(rjson.read_text()), json.loads(sjson.read_text())
    keys = ("latency_ms_median", "latency_ms_p90", "latency_ms_max", "latency_growth_ms",
            "fps", "frames_delivered", "frames_dropped", "frames_unaccounted")
    return {"seconds": seconds, "processes": "semstream receive + semstream send",
            "receiver": {k: got.get(k) for k in keys},
            "sender": {k: sent.get(k) for k in ("fps", "frames_read", "frames_sent",
                                                 "frames_skipped", "frames_dropped",
                                                 "latency_ms_median")},
            "selected_pairs": got["selected_pairs"]}


def bench_modes(clip: Path, frames: int, base: SenderConfig) -> dict:
    """Channel uses per frame and quality by mode on ``clip`` (offline run, every frame)."""
    from stream.experiments.run import RunConfig, run_video

    out = {}
    variants = {"direct": replace(base, mode="direct"), "proposed": base,
                "proposed_fg_latent": replace(base, fg_latent=True)}
    for name, cfg in variants.items():
        r = run_video(clip, RunConfig(cfg, ReceiverConfig(interp="off", weights=base.weights),
                                      frames, rows=True))
        key_uses = [row["channel_uses"] for row in r["rows"]
                    if row.get("sent") == "key" and not row.get("background_update")]
        out[name] = {k: r[k] for k in ("channel_uses_per_frame", "compression_ratio",
                                       "psnr_mean", "psnr_fg_mean", "ssim_mean", "modes",
                                       "background_updates", "channel_uses")}
        out[name]["key_frame_uses_mean"] = sum(key_uses) / len(key_uses) if key_uses else None
        out[name]["side_info_only_frames"] = sum(
            1 for row in r["rows"] if row.get("sent") == "key" and row.get("rate_level") is None
            and not row.get("background_update"))
    direct = out["direct"]["channel_uses_per_frame"]
    for name in ("proposed", "proposed_fg_latent"):
        out[name]["share_of_direct"] = round(out[name]["channel_uses_per_frame"] / direct, 4)
        if out[name]["key_frame_uses_mean"] is not None:
            out[name]["key_frame_share_of_direct"] = round(
                out[name]["key_frame_uses_mean"] / direct, 4)
    return {"clip": clip.name, "frames": frames, "snr_db": base.snr_db, **out}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", type=Path, default=ROOT / "samples" / "asl-again.mkv")
    p.add_argument("--surveillance", type=Path,
                   default=ROOT / "samples" / "one-by-one-person.mp4")
    p.add_argument("--frames", type=int, default=60, help="frames for the speed runs")
    p.add_argument("--mode-frames", type=int, default=30, help="frames for the mode runs")
    p.add_argument("--surveillance-frames", type=int, default=120)
    p.add_argument("--latency-seconds", type=float, default=10.0)
    p.add_argument("--latency-skip", type=int, default=0,
                   help="the live session's --skip (the receiver interpolates with --interp)")
    p.add_argument("--interp", default="rife-fg", choices=("rife-fg", "rife", "dis", "blend"))
    p.add_argument("--interp-scale", type=float, default=0.5, help="(semstream receive's)")
    p.add_argument("--late-fallback", default=LIVE_LATE_FALLBACK,
                   help="(semstream receive's; none: never)")
    p.add_argument("--snr", type=float, default=10.0)
    p.add_argument("--max-pixels", type=int, default=LIVE_MAX_PIXELS,
                   help="resolution check of the sender (fewer pixels: faster)")
    p.add_argument("--skip-part", action="append", default=[],
                   choices=("sender", "receiver", "latency", "modes"),
                   help="leave a part out (repeatable)")
    p.add_argument("--weights", type=Path,
                   help="JSCC weights file (default: the shipped wide model)")
    p.add_argument("--json", type=Path, metavar="PATH")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    frames = _frames(args.clip, args.frames)
    size = (frames[0].image.shape[1], frames[0].image.shape[0])
    report: dict = {"clip": args.clip.name, "size": list(size), "targets": TARGETS,
                    "max_pixels": args.max_pixels, "interp": args.interp,
                    "torch_threads": torch.get_num_threads()}
    # what `semstream send` uses by default
    base = SenderConfig(snr_db=args.snr, weights=args.weights, max_pixels=args.max_pixels,
                        background_codecs=LIVE_BACKGROUND_CODECS, symbols=LIVE_SYMBOLS)
    rcfg = ReceiverConfig(interp=args.interp, interp_scale=args.interp_scale,
                          late_fallback=None if args.late_fallback == "none"
                          else args.late_fallback, weights=args.weights)
    if "sender" not in args.skip_part:
        report["sender"], _ = bench_sender(frames, base)
    if "receiver" not in args.skip_part:
        report["sender_skip2"], messages = bench_sender(frames, replace(base, skip=2))
        report["receiver"] = bench_receiver(messages, size, 2, rcfg)
    if "latency" not in args.skip_part:
        report["latency"] = bench_latency(args.clip, replace(base, skip=args.latency_skip),
                                          args.latency_seconds, rcfg)
    if "modes" not in args.skip_part:
        report["modes"] = [bench_modes(args.clip, args.mode_frames, base),
                           bench_modes(args.surveillance, args.surveillance_frames, base)]
    report["meets"] = {
        "sender_fps": report.get("sender", {}).get("fps", 0) >= TARGETS["sender_fps"],
        "receiver_fps": report.get("receiver", {}).get("fps", 0) >= TARGETS["receiver_fps"],
        "latency_ms_median": (report.get("latency", {}).get("receiver", {})
                              .get("latency_ms_median") or 1e9) < TARGETS["latency_ms_median"],
    }
    text = json.dumps(report, indent=1, default=str)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
