"""``semstream run``: sender -> channel -> receiver on a video file in one process.

Every frame is processed (the pipeline's offline mode); what the sender emits goes
through the real wire format (packets, float16 symbols) into the receiver, exactly as
on a live link, so live and offline share one implementation. The run is deterministic
for a seed. The report holds whole-frame PSNR/SSIM, PSNR inside the foreground mask,
channel uses by kind, the frames dropped by reason, modes and per-frame rows.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from jscc.channel import FrameChannel
from jscc.metrics import QualityLog
from stream.core import wire
from stream.core.config import PipelineConfig, ReceiverConfig, SenderConfig
from stream.core.pipeline import Pipeline, Stage
from stream.core.receiver import OutputFrame, ReceiverCore
from stream.core.sender import SenderCore, SenderOutput, load_codec
from stream.core.sinks import VideoFileSink
from stream.core.sources import VideoFileSource


@dataclass(frozen=True)
class RunConfig:
    """One offline run: sender and receiver settings, how many frames (None = all), the
    output video (None = none), whether to keep per-frame rows in the report, the torch
    threads for the JSCC codec (None keeps the process's setting), and ``link``: a
    per-frame channel (:class:`jscc.channel.FrameChannel`: fading, multicast) that replaces
    the sender's channel, told each frame's index before the frame is encoded."""

    sender: SenderConfig = SenderConfig()
    receiver: ReceiverConfig = ReceiverConfig()
    max_frames: int | None = None
    out: Path | None = None
    rows: bool = True
    threads: int | None = 2
    link: FrameChannel | None = None
    progress: bool = False  # a progress bar on stderr (frames/s, running PSNR)


def _loopback_wire(output: SenderOutput, packer: wire.Packer,
                   unpacker: wire.Unpacker) -> list:
    """The sender's messages as the receiver's wire parser rebuilds them."""
    received = []
    for msg in output.messages:
        for packet in packer.pack(msg):
            done = unpacker.feed(packet)
            if done is not None:
                received.append(done)
    return received


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


async def run_video_async(video: str | Path, config: RunConfig = RunConfig()) -> dict:
    """Run the chain on ``video``; returns the report (see the module docstring)."""
    t0 = time.perf_counter()
    source = VideoFileSource(video, realtime=False, max_frames=config.max_frames)
    codec = load_codec(config.sender.model, config.sender.weights, config.threads,
                       config.sender.device, config.sender.precision)
    sender = SenderCore(config.sender, codec, keep_mask=True)
    if config.link is not None:
        sender.channel = config.link
    # nothing to interpolate without skipping: do not load an interpolator
    rcfg = config.receiver if config.sender.skip > 1 else replace(config.receiver, interp="off")
    receiver = ReceiverCore(rcfg, codec)
    w, h = source.info.width, source.info.height
    receiver.start(wire.SessionParams(w, h, source.info.fps, config.sender.skip,
                                      config.sender.channel, config.sender.snr_db))
    packer, unpacker = wire.Packer(), wire.Unpacker()
    originals: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    sent: dict[int, dict] = {}
    quality = QualityLog()
    sink = VideoFileSink(config.out, source.info.fps) if config.out else None

    def analyse(frame):
        a = sender.analyse(frame)
        originals[frame.index] = (frame.image, a.mask)
        return a

    def encode(a):
        if config.link is not None:
            config.link.frame = a.frame.index
        out = sender.encode(a)
        msg = out.frame_message
        sent[a.frame.index] = {"sent": a.mode.name.lower(), "channel_uses": out.channel_uses,
                               "background_update": a.update is not None,
                               "rate_level": None if msg is None or not msg.symbols.size
                               else msg.rate_level}
        return _loopback_wire(out, packer, unpacker)

    bar = _progress_bar(source.info.frames, config) if config.progress else None

    def score(frame: OutputFrame) -> None:
        image, mask = originals.pop(frame.index)
        quality.add(image, frame.image, mask if mask is not None and mask.any() else None,
                    index=frame.index, out=frame.mode)
        if sink is not None:
            sink.write(frame)
        if bar is not None:
            bar.update(1)
            running = _mean([r["psnr"] for r in quality.rows[-30:]])
            if running is not None:
                bar.set_postfix_str(f"PSNR {running:.2f} dB (last 30)", refresh=False)

    pipeline = Pipeline([Stage("analyse", analyse), Stage("encode", encode),
                         Stage("decode", receiver.decode), Stage("compose", receiver.compose),
                         Stage("score", score)], PipelineConfig(realtime=False, queue_size=3))
    try:
        await pipeline.run(source.frames())
    finally:
        sender.close()
        if sink is not None:
            sink.close()
        if bar is not None:
            bar.close()
    frames = pipeline.source_items
    receiver.finish(frames)
    return _report(video, config, frames, sender, receiver, quality, sent, pipeline,
                   time.perf_counter() - t0)


def _progress_bar(total: int | None, config: RunConfig):
    """A tqdm bar over the frames to run (frames/s as its rate)."""
    from tqdm import tqdm

    if config.max_frames is not None:
        total = min(total, config.max_frames) if total else config.max_frames
    return tqdm(total=total or None, unit="frame", desc="semstream run", dynamic_ncols=True,
                leave=True)


def _report(video, config: RunConfig, frames: int, sender: SenderCore,
            receiver: ReceiverCore, quality: QualityLog, sent: dict, pipeline: Pipeline,
            seconds: float) -> dict:
    rows = sorted(quality.rows, key=lambda r: r["index"])
    ledger = receiver.ledger
    report = {
        "video": str(video), "frames": frames, "frames_delivered": ledger.delivered,
        "psnr_mean": _mean([r["psnr"] for r in rows]),
        "ssim_mean": _mean([r["ssim"] for r in rows]),
        "psnr_fg_mean": _mean([r.get("psnr_mask") for r in rows]),
        **sender.ledger.summary(frames),
        "frames_dropped": dict(ledger.dropped),
        "frames_unaccounted": ledger.unaccounted(frames),
        "messages_rejected": dict(receiver.rejected),
        "seconds": round(seconds, 3), "fps": round(frames / seconds, 3) if seconds else None,
        "device": str(receiver.codec.device),
        "jscc_precision": receiver.codec.precision,
        "config": {"sender": _plain(asdict(config.sender)),
                   "receiver": _plain(asdict(config.receiver)),
                   "max_frames": config.max_frames,
                   "link": None if config.link is None else
                   {"snr_db": config.link.snr_db,
                    "gains_db": [round(10 * math.log10(max(abs(g) ** 2, 1e-12)), 3)
                                 for g in config.link.gains[:frames]]}},
        "stages": pipeline.stats()["stages"],
    }
    if config.rows:
        by_index = {r["index"]: r for r in rows}
        report["rows"] = [{"index": i, **sent.get(i, {}), **_row(by_index.get(i))}
                          for i in range(frames)]
    return report


def _row(r: dict | None) -> dict:
    if r is None:
        return {"delivered": False}
    return {"delivered": True, "out": r["out"], "psnr": _finite(r["psnr"]),
            "ssim": r["ssim"], "psnr_fg": _finite(r.get("psnr_mask"))}


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _plain(d: dict) -> dict:
    return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


def run_video(video: str | Path, config: RunConfig = RunConfig()) -> dict:
    """Blocking form of :func:`run_video_async`."""
    import asyncio

    return asyncio.run(run_video_async(video, config))
