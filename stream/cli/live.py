"""``semstream live``: sender, receiver and viewer in one command (``stream.net.demo``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stream.cli.peers import (
    INTERP_CHOICES,
    NO_DROP,
    _device,
    _sender_config,
    _sender_options,
    _summary,
    _write_json,
)

# Defaults of `semstream live` where they differ from `send` / `receive` (both ends share the
# cores here: bench/bench_live.py): every 2nd frame is skipped and interpolated, and the
# interpolation falls back to a blend (not DIS) when RIFE cannot keep up.
DEMO_SKIP = 2
DEMO_LATE_FALLBACK = "blend"


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``live``."""
    p = sub.add_parser("live", help="the live demo: sender, receiver and browser viewer in "
                                    "one command, with the channel under your control",
                       description="Stream SOURCE (video file, image folder, webcam[:DEVICE] "
                                   "or browser[:PORT]) from a sender to a receiver over "
                                   "loopback WebRTC with a fresh token, and serve the viewer: "
                                   "open the address it prints. Ctrl-C ends it and writes "
                                   "both reports.")
    p.add_argument("source")
    p.add_argument("--view", type=int, default=8080, metavar="PORT",
                   help="port of the viewer page on 127.0.0.1 (default 8080; 0: any free)")
    p.add_argument("--original", action="store_true",
                   help="show the source frames beside the rebuilt ones, and PSNR against "
                        "them (local only: never sent over the simulated channel)")
    p.add_argument("--loop", action="store_true", help="play a video file in a loop")
    _sender_options(p, live=True)
    p.add_argument("--mode", choices=("proposed", "direct", "fg-latent"), default="proposed",
                   help="starting mode (switchable on the page)")
    p.add_argument("--interp", choices=INTERP_CHOICES, default="rife-fg",
                   help="how skipped frames are rebuilt (switchable on the page)")
    p.add_argument("--interp-scale", type=float, default=0.5, choices=(0.25, 0.5, 1.0, 2.0),
                   help="RIFE flow resolution (default 0.5)")
    p.add_argument("--late-fallback", default=DEMO_LATE_FALLBACK, metavar="METHOD",
                   help=f"cheaper interpolation that takes over when --interp cannot keep up "
                        f"(default {DEMO_LATE_FALLBACK}: 1 ms a frame against DIS's 31, "
                        f"0.8 dB below it; none: never)")
    p.add_argument("--paste", choices=("feather", "blend"), default="feather",
                   help="how the receiver pastes a crop into its background (default "
                        "feather: 7 ms a frame; blend, which hides the box when the crop's "
                        "level differs, about 30 ms for a 400x440 box here)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch threads for the process (default 1: both ends' stages "
                        "already run in parallel threads)")
    p.add_argument("--scene-every", type=int, default=3, metavar="N",
                   help="ORB scene check on every N-th analysed frame (default 3)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--fps", type=float, default=30.0,
                   help="frame rate of an image folder or camera (default 30)")
    p.add_argument("--no-drop", action="store_true", help=NO_DROP)
    p.add_argument("--out", type=Path, metavar="FILE", help="also write the rebuilt video")
    p.add_argument("--reports", type=Path, default=Path("out/live"), metavar="DIR",
                   help="where sender.json and receiver.json go (default out/live)")
    # both ends share this machine: every second frame is interpolated by default
    p.set_defaults(func=_live, skip=DEMO_SKIP)


def live_config(args: argparse.Namespace):
    """The ``stream.net.demo.LiveConfig`` that ``semstream live`` options ask for."""
    from dataclasses import replace

    from stream.core.config import PipelineConfig, ReceiverConfig
    from stream.net.demo import LiveConfig

    if args.seconds is not None and not args.seconds > 0:
        raise ValueError(f"--seconds must be positive, got {args.seconds}")
    if not 0 <= args.view < 65536:
        raise ValueError(f"--view must be a port number (0-65535), got {args.view}")
    sender = _sender_config(args, "direct" if args.mode == "direct" else "proposed")
    if args.mode == "fg-latent":
        sender = replace(sender, fg_latent=True)
    receiver = ReceiverConfig(interp=args.interp, interp_scale=args.interp_scale,
                              late_fallback=None if args.late_fallback == "none"
                              else args.late_fallback, library=args.library,
                              paste=args.paste, model=args.model,
                              weights=args.weights, device=_device(args),
                              precision=args.precision)
    config = LiveConfig(args.source, sender, receiver, view_port=args.view,
                        original=args.original, loop=args.loop, fps=args.fps,
                        max_frames=args.max_frames, out=args.out, seconds=args.seconds,
                        pipeline=PipelineConfig(realtime=not args.no_drop),
                        threads=args.threads, scene_every=args.scene_every)
    return config


def _live(args: argparse.Namespace) -> int:
    import asyncio

    from stream.net.demo import run_live

    sent, received = asyncio.run(run_live(live_config(args)))
    _write_json(args.reports / "sender.json", sent)
    _write_json(args.reports / "receiver.json", received)
    print(_summary("live (sender)", sent), file=sys.stderr)
    print(_summary("live (receiver)", received), file=sys.stderr)
    print(f"semstream live: reports in {args.reports}/sender.json and receiver.json",
          file=sys.stderr)
    return 0 if sent["end_reason"] == "bye" else 1
