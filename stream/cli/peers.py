"""``semstream send``, ``semstream receive`` and ``semstream run``.

Handlers import the heavy parts (torch, mediapipe, aiortc) only when they run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jscc.device_option import add_device_option

# interp.methods.METHOD_NAMES and "off" (kept here so --help needs no heavy import)
INTERP_CHOICES = ("rife-fg", "rife", "dis", "blend", "repeat", "off")
NO_DROP = ("process every frame even when a stage falls behind (latency grows); by default "
           "the oldest waiting frame is dropped and counted")


def add_model_options(p: argparse.ArgumentParser, default: str) -> None:
    """``--model`` (a shipped JSCC preset, ``default`` unless given) and ``--weights``."""
    p.add_argument("--model", default=default, metavar="NAME",
                   help=f"shipped JSCC weights jscc/weights/NAME.pt: wide (better) or edge "
                        f"(2.4x faster in fp32, 1.5x in bf16); default {default}; sender and "
                        "receiver must use the same")
    p.add_argument("--weights", type=Path, metavar="FILE",
                   help="a JSCC weights file instead of --model's shipped one")


def _sender_options(p: argparse.ArgumentParser, live: bool) -> None:
    """Options of ``send`` (live, with the defaults of ``stream.core.config.LIVE_*``) and ``run``
    (offline, SenderConfig's defaults)."""
    from stream.core.config import (
        LIVE_BACKGROUND_CODECS,
        LIVE_MAX_PIXELS,
        LIVE_MODEL,
        LIVE_SYMBOLS,
        SenderConfig,
        TemporalConfig,
    )

    p.add_argument("--snr", type=float, default=10.0, metavar="DB",
                   help="channel SNR in dB (default 10)")
    p.add_argument("--channel", choices=("awgn", "rayleigh"), default="awgn")
    p.add_argument("--segmenter", default="selfie",
                   help="selfie | rembg:<model> (e.g. rembg:u2netp) | pose-hull")
    p.add_argument("--skip", type=int, default=0, metavar="K",
                   help="send every K-th frame only; the receiver interpolates the rest")
    p.add_argument("--library", type=Path, metavar="DIR",
                   help="background library folder (the receiver needs the same one)")
    p.add_argument("--fg-latent", action="store_true",
                   help="send only the latent positions inside the foreground mask")
    p.add_argument("--fg-margin", type=int, default=8, metavar="PX",
                   help="with --fg-latent: grow the mask by PX pixels first (default 8)")
    p.add_argument("--direct-above", type=float, default=SenderConfig.direct_above,
                   metavar="FRACTION",
                   help="proposed mode: send a frame whole when its crop box covers at least "
                        f"this fraction of it (default {SenderConfig.direct_above:g})")
    p.add_argument("--temporal", choices=("on", "off"), default="off",
                   help="proposed mode: send only the latent cells of the crop that changed "
                        "and refine still ones at the receiver (default off)")
    p.add_argument("--budget", type=float, metavar="USES_PER_FRAME",
                   help="with --temporal on: channel uses per source frame for the frames "
                        "(symbols and side information; backgrounds not included)")
    p.add_argument("--cell-threshold", type=float, default=TemporalConfig.threshold,
                   metavar="X",
                   help="with --temporal on: send a latent cell when that lowers the "
                        "receiver's latent error by more than X channel noise variances "
                        f"(default {TemporalConfig.threshold:g})")
    pixels = LIVE_MAX_PIXELS if live else SenderConfig.max_pixels
    p.add_argument("--max-pixels", type=int, default=pixels, metavar="N",
                   help=f"resolution check: scale crops and frames down to at most N pixels "
                        f"(default {pixels})")
    p.add_argument("--background", choices=("digital", "jscc"), default="digital",
                   help="how backgrounds cross the channel: an image codec at the MCS rate "
                        "(JSCC below the MCS cliff), or JSCC always")
    codecs = ",".join(LIVE_BACKGROUND_CODECS if live else SenderConfig.background_codecs)
    p.add_argument("--background-codecs", default=codecs, metavar="LIST",
                   help=f"image codecs a digital background may use (default {codecs})")
    symbols = LIVE_SYMBOLS if live else SenderConfig.symbols
    p.add_argument("--symbols", choices=("float16", "int8"), default=symbols,
                   help=f"wire quantisation of the received symbols (default {symbols}; int8 "
                        "halves what the data channel carries)")
    p.add_argument("--seed", type=int, default=0, help="seed of the channel noise")
    add_model_options(p, LIVE_MODEL if live else SenderConfig.model)
    add_device_option(p)


def _device(args: argparse.Namespace) -> str:
    """The resolved ``--device`` (e.g. "cpu", "cuda:0"); the first call says it (stdout)."""
    if getattr(args, "resolved_device", None) is None:
        from jscc.device import announce

        args.resolved_device = announce(args.device, args.command,
                                        getattr(args, "segmenter", None))
    return args.resolved_device


def _sender_config(args: argparse.Namespace, mode: str = "proposed"):
    from stream.core.config import SenderConfig, TemporalConfig

    if args.skip == 1 or args.skip < 0:
        raise ValueError(f"--skip must be 0 (off) or at least 2, got {args.skip}")
    if args.budget is not None and args.temporal != "on":
        raise ValueError("--budget needs --temporal on")
    temporal = TemporalConfig(threshold=args.cell_threshold, budget=args.budget) \
        if args.temporal == "on" else None
    return SenderConfig(snr_db=args.snr, channel=args.channel, mode=mode,
                        segmenter=args.segmenter, skip=args.skip, library=args.library,
                        fg_latent=args.fg_latent, fg_margin=args.fg_margin, temporal=temporal,
                        direct_above=args.direct_above,
                        max_pixels=args.max_pixels, background=args.background,
                        background_codecs=tuple(args.background_codecs.split(",")),
                        symbols=args.symbols, seed=args.seed, model=args.model,
                        weights=args.weights,
                        device=_device(args), precision=args.precision)


def _pipeline(args: argparse.Namespace):
    from stream.core.config import PipelineConfig

    return PipelineConfig(realtime=not args.no_drop)


def _write_json(path: Path | None, report: dict) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1, default=str) + "\n")
    except OSError as exc:
        raise OSError(f"cannot write report {path}: {exc.strerror}") from None


def _summary(role: str, report: dict) -> str:
    keys = ("frames", "frames_sent", "frames_delivered", "frames_dropped", "fps",
            "latency_ms_median", "channel_uses_per_frame", "psnr_mean")
    parts = [f"{k}={report[k]:.4g}" if isinstance(report.get(k), float) else f"{k}={report[k]}"
             for k in keys if k in report and report[k] is not None]
    return f"semstream {role}: " + " ".join(parts)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``send``, ``receive`` and ``run``."""
    from stream.core.config import LIVE_LATE_FALLBACK, LIVE_MODEL

    p = sub.add_parser("send", help="stream a file, image folder or camera to a receiver",
                       description="Stream SOURCE (video file, image folder, webcam[:DEVICE] "
                                   "or browser[:PORT]) to a receiver over WebRTC.")
    p.add_argument("source")
    p.add_argument("--to", required=True, metavar="HOST:PORT", help="the receiver's address")
    p.add_argument("--token", required=True, metavar="T", help="shared secret of the session")
    _sender_options(p, live=True)
    p.add_argument("--mode", choices=("proposed", "direct"), default="proposed")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--loop", action="store_true", help="play a video file in a loop")
    p.add_argument("--fps", type=float, default=30.0,
                   help="frame rate of an image folder or camera (default 30)")
    p.add_argument("--no-drop", action="store_true", help=NO_DROP)
    p.add_argument("--json", type=Path, metavar="REPORT.json")
    p.set_defaults(func=_send)

    p = sub.add_parser("receive", help="receive a stream, rebuild it, write and/or show it",
                       description="Listen for one sender; rebuild its frames and write them "
                                   "to --out and/or show them on the --view page.")
    p.add_argument("--listen", required=True, metavar="HOST:PORT")
    p.add_argument("--token", required=True, metavar="T")
    p.add_argument("--view", type=int, metavar="PORT",
                   help="serve the browser viewer on this port (same host as --listen)")
    p.add_argument("--out", type=Path, metavar="FILE", help="write the rebuilt video (H.264)")
    p.add_argument("--interp", choices=INTERP_CHOICES, default="rife-fg",
                   help="how skipped frames are rebuilt (switchable live on the viewer)")
    p.add_argument("--interp-scale", type=float, default=0.5, choices=(0.25, 0.5, 1.0, 2.0),
                   help="RIFE flow resolution (default 0.5 live: 3x faster than 1.0 on the "
                        "foreground for 0.4 dB, bench/bench_interp.py)")
    p.add_argument("--late-fallback", default=LIVE_LATE_FALLBACK, metavar="METHOD",
                   help="cheaper interpolation that takes over when --interp cannot keep up "
                        f"(default {LIVE_LATE_FALLBACK}; none: never)")
    p.add_argument("--library", type=Path, metavar="DIR")
    add_model_options(p, LIVE_MODEL)
    add_device_option(p)
    p.add_argument("--no-drop", action="store_true", help=NO_DROP)
    p.add_argument("--json", type=Path, metavar="REPORT.json")
    p.set_defaults(func=_receive)

    p = sub.add_parser("run", help="offline: sender -> channel -> receiver on a video, "
                                   "every frame, with quality figures",
                       description="Run the whole chain on VIDEO in one process (every frame, "
                                   "deterministic for --seed) and report quality and cost.")
    p.add_argument("video", type=Path)
    _sender_options(p, live=False)
    p.add_argument("--mode", choices=("proposed", "direct"), default="proposed")
    p.add_argument("--interp", choices=INTERP_CHOICES, default="rife-fg",
                   help="how skipped frames are rebuilt (rife-fg: RIFE on the foreground)")
    p.add_argument("--interp-scale", type=float, default=1.0, choices=(0.25, 0.5, 1.0, 2.0),
                   help="RIFE flow resolution (0.5: about 2x faster)")
    p.add_argument("--max-frames", type=int, metavar="N", help="only the first N frames")
    p.add_argument("--out", type=Path, metavar="OUT.mp4", help="write the rebuilt video")
    p.add_argument("--json", type=Path, metavar="REPORT.json")
    p.add_argument("--no-rows", action="store_true", help="leave per-frame rows out")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (frames/s and running PSNR) on stderr")
    p.set_defaults(func=_run)


def _send(args: argparse.Namespace) -> int:
    import asyncio

    from stream.net import live

    to = live.parse_address(args.to)
    config = _sender_config(args, args.mode)
    source = live.open_source(args.source, realtime=True, max_frames=args.max_frames,
                              fps=args.fps, loop=args.loop)
    report = asyncio.run(live.send(source, to, args.token, config, _pipeline(args)))
    _write_json(args.json, report)
    print(_summary("send", report), file=sys.stderr)
    return 0 if report["end_reason"] == "bye" else 1


def _receive(args: argparse.Namespace) -> int:
    import asyncio

    from stream.core.config import ReceiverConfig
    from stream.net import live

    listen = live.parse_address(args.listen)
    view = None if args.view is None else live.Address(listen.host, args.view)
    config = ReceiverConfig(interp=args.interp, interp_scale=args.interp_scale,
                            late_fallback=None if args.late_fallback == "none"
                            else args.late_fallback, library=args.library,
                            model=args.model, weights=args.weights, device=_device(args),
                            precision=args.precision)
    report = asyncio.run(live.receive(listen, args.token, config, args.out, view,
                                      _pipeline(args)))
    _write_json(args.json, report)
    print(_summary("receive", report), file=sys.stderr)
    return {"bye": 0, "closed": 130}.get(report["end_reason"], 1)  # closed: Ctrl-C here


def _run(args: argparse.Namespace) -> int:
    from stream.core.config import ReceiverConfig
    from stream.experiments.run import RunConfig, run_video

    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be at least 1, got {args.max_frames}")
    config = RunConfig(_sender_config(args, args.mode),
                       ReceiverConfig(interp=args.interp, interp_scale=args.interp_scale,
                                      library=args.library, model=args.model,
                                      weights=args.weights, device=_device(args),
                                      precision=args.precision),
                       args.max_frames, args.out, not args.no_rows,
                       progress=not args.no_progress)
    report = run_video(args.video, config)
    _write_json(args.json, report)
    print(_summary("run", report), file=sys.stderr)
    if args.out is not None:
        print(f"semstream run: rebuilt video in {args.out}", file=sys.stderr)
    if args.json is not None:
        print(f"semstream run: report in {args.json}", file=sys.stderr)
    return 0
