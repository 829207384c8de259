"""Live sessions: ``semstream send`` and ``semstream receive`` over WebRTC.

Sender: source (paced) -> analyse -> encode (+ channel) -> data channel. Real-time drops
only ever hit frames that would have been sent (a skipped frame costs nothing to keep);
a dropped frame is counted with its reason and listed in the Bye. Receiver: data
channel -> decode -> compose (paste-back, interpolation) -> file and/or viewer. Both end
by themselves when the sender says bye, when the peer vanishes (heartbeat timeout) or on
Ctrl-C, with outputs flushed and a summary printed.

Loss reports: once the sender's frames show temporal coding (a cell map), the receiver
tells it every LOST_PERIOD_S which sent frames its decode step never got or could not use
(Control LOST, ``ReceiverCore.take_lost``); the sender checks each report against the
frames it sent (``wire.check_lost``: a refused one is counted by reason in its report)
and has the core send their cells again (``SenderCore.report_lost``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from stream.core import wire
from stream.core.accounting import ChannelLedger, FrameLedger, LatencyStats
from stream.core.config import PipelineConfig, ReceiverConfig, SenderConfig
from stream.core.pipeline import Pipeline, Stage
from stream.core.receiver import Decoded, OutputFrame, ReceiverCore
from stream.core.sender import Analysis, SenderCore, SenderOutput
from stream.core.sources import (
    ImageFolderSource,
    Source,
    SourceError,
    VideoFileSource,
    WebcamSource,
)
from stream.core.validate import Invalid
from stream.net.browser_source import BrowserCameraSource
from stream.net.peer import PeerGone, PeerOptions, ReceiverEndpoint, SenderEndpoint

LOST_PERIOD_S = 0.15  # how often the receiver reports the frames it lost (when it has any)


@dataclass(frozen=True)
class Address:
    """A host and TCP port."""

    host: str
    port: int


def parse_address(text: str) -> Address:
    """HOST:PORT (IPv6 as [addr]:port) -> Address; ValueError naming the problem."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"address {text!r} is not HOST:PORT (e.g. 127.0.0.1:8700)")
    return Address(host, int(port))


def open_source(spec: str, realtime: bool = True, max_frames: int | None = None,
                fps: float = 30.0, loop: bool = False) -> Source:
    """The source a spec names; SourceError when unusable. loop: start a video file over
    at its end. Specs:

    - ``PATH`` to a video file (decoded with PyAV);
    - ``PATH`` to a folder of .png/.jpg/.bmp images (sorted by name; ``fps`` gives pts);
    - ``webcam[:DEVICE]``: PyAV capture (v4l2 on Linux, avfoundation on macOS, dshow on
      Windows; DEVICE defaults to /dev/video0, "0", "video=<first camera>" respectively);
    - ``browser[:PORT]``: serves a page on 127.0.0.1:PORT whose getUserMedia camera is
      offered to this sender over WebRTC (``stream.net.browser_source``).
    """
    if spec == "webcam" or spec.startswith("webcam:"):
        return WebcamSource(spec.partition(":")[2] or None, fps=fps, max_frames=max_frames)
    if spec == "browser" or spec.startswith("browser:"):
        port = spec.partition(":")[2] or "8080"
        if not port.isdigit():
            raise SourceError(f"browser source port {port!r} is not a number: use browser:PORT")
        return BrowserCameraSource(int(port), fps=fps, max_frames=max_frames)
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(path, fps, realtime, max_frames)
    if not path.exists():
        raise SourceError(f"source {spec} does not exist: give a video file, an image folder, "
                          "webcam[:DEVICE] or browser[:PORT]")
    return VideoFileSource(path, realtime, max_frames, loop)


def _on_interrupt(callback: Callable[[], None]) -> None:
    """Call ``callback`` on Ctrl-C / SIGTERM (where the loop supports signal handlers)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, callback)


class SendHooks:
    """Extras a live sender runs with (``semstream live``, ``stream.net.demo``); the base
    class does nothing."""

    def before_analyse(self, core: SenderCore, frame) -> None:
        """Called in the analyse thread before each frame (settings change here)."""

    def analysed(self, analysis: Analysis) -> None:
        """Called in the analyse thread after each frame."""

    def outgoing(self, index: int) -> list[wire.Message]:
        """Messages to send before frame ``index`` (or any later frame) goes out."""
        return []

    async def run(self, endpoint: SenderEndpoint, figures: Callable[[], dict]) -> None:
        """Runs beside the pipeline until cancelled; ``figures()`` gives the sender's live
        numbers (frames read, sent, dropped, latency)."""


class ReceiveHooks:
    """Extras a live receiver runs with (``stream.net.demo``): a sink (``write``, ``close``)
    with access to the session; the base class does nothing. A receiver given hooks leaves
    Ctrl-C to its caller."""

    def attach(self, core: ReceiverCore, endpoint: ReceiverEndpoint, session) -> None:
        """Called once the endpoint listens."""

    def message(self, msg: wire.Control) -> bool:
        """A control message from the sender; True passes it on to the compose step."""
        return False

    def before_compose(self, decoded: Decoded) -> None:
        """Called in the compose thread, in message order, before each message is composed."""

    def write(self, frame: OutputFrame) -> None:
        """Called for each rebuilt frame (after the other sinks)."""

    def close(self) -> None:
        """Called when the session's output ends."""


def _frame_index(item: object) -> int:
    """Source index of a pipeline item (Frame, Analysis, SenderOutput, FrameMsg, Decoded)."""
    if isinstance(item, Decoded):
        item = item.msg
    elif isinstance(item, SenderOutput):
        item = item.analysis
    if isinstance(item, Analysis):
        item = item.frame
    return item.index


# --- sender ---------------------------------------------------------------------------

class _LostReports:
    """The sender's side of Control LOST: each report is checked against the frames this
    session sent or dropped on their way (``ledger``) up to the last one sent, and the
    good ones go to the core; refusals are counted by reason."""

    def __init__(self, core: SenderCore, ledger: FrameLedger) -> None:
        self.core, self.ledger = core, ledger
        self.last_sent = -1
        self.reported: set[int] = set()
        self.refused: Counter[str] = Counter()

    def handle(self, msg: wire.Control) -> None:
        """One LOST message (on the event loop): never raises."""
        try:
            frames = wire.check_lost(msg.body, self.ledger.has, self.last_sent, self.reported)
        except wire.ControlRefused as exc:
            self.refused[exc.reason] += 1
            return
        self.reported.update(frames)
        self.core.report_lost(frames)


async def send(source: Source, to: Address, token: str, config: SenderConfig,
               pipeline: PipelineConfig | None = None,
               options: PeerOptions | None = None, log=sys.stderr,
               hooks: SendHooks | None = None) -> dict:
    """Stream ``source`` to a receiver at ``to``; returns the sender's report (its
    latency is capture to handed to the data channel; frames_delivered = frames sent)."""
    hooks = hooks or SendHooks()
    await source.start()
    core = await asyncio.to_thread(SenderCore, config)
    info = source.info
    await asyncio.to_thread(core.warm_up, info.width, info.height)
    params = wire.SessionParams(info.width, info.height, info.fps, config.skip, config.channel,
                                config.snr_db, core.codec.cfg.name, config.segmenter)
    endpoint = SenderEndpoint(to.host, to.port, token, params, options)
    ledger = FrameLedger()
    on_air = ChannelLedger()  # messages handed to the data channel (not those dropped)
    latency = LatencyStats()  # capture -> handed to the data channel
    read = [0]
    lost = _LostReports(core, ledger)
    endpoint.on_control(wire.ControlTopic.LOST, lost.handle)
    started = time.monotonic()
    try:
        await endpoint.connect()
        print(f"semstream send: connected to {to.host}:{to.port}, streaming {source.name}",
              file=log)

        async def frames() -> AsyncIterator:
            async for frame in source.frames():
                read[0] += 1
                yield frame

        def analyse(frame):
            hooks.before_analyse(core, frame)
            analysis = core.analyse(frame)
            hooks.analysed(analysis)
            return analysis

        async def transmit(out: SenderOutput) -> None:
            index = out.analysis.frame.index
            with contextlib.suppress(PeerGone):
                for msg in hooks.outgoing(index):
                    await endpoint.send(msg)
            if out.analysis.mode == wire.Mode.SKIP:
                return  # nothing to send; the core counted the skip
            if endpoint.ended:
                ledger.drop(index, "peer-gone")
                return
            try:
                for msg in out.messages:
                    if not await endpoint.send(msg, drop_if_busy=isinstance(msg, wire.FrameMsg)):
                        ledger.drop(index, "backpressure")
                        return
                    on_air.add_message(msg)
            except PeerGone:
                ledger.drop(index, "peer-gone")
                return
            ledger.deliver(index)
            lost.last_sent = max(lost.last_sent, index)
            latency.add(1000 * (time.time() - out.analysis.frame.captured))

        # Skipped frames and background updates are never dropped: a skipped frame costs
        # nothing, and the receiver needs every background.
        stages = [Stage("analyse", analyse,
                        droppable=lambda f: not core.config.skipped(f.index)),
                  Stage("encode", core.encode,
                        droppable=lambda a: a.mode != wire.Mode.SKIP and a.update is None),
                  Stage("transmit", transmit,
                        droppable=lambda o: o.analysis.mode != wire.Mode.SKIP and not any(
                            isinstance(m, wire.Background) for m in o.messages))]
        pipe = Pipeline(stages, pipeline or PipelineConfig(),
                        on_drop=lambda item, reason: ledger.drop(_frame_index(item), reason))
        _on_interrupt(pipe.stop)
        watch = asyncio.ensure_future(_stop_when_ended(endpoint, pipe))
        extra = asyncio.ensure_future(hooks.run(endpoint, lambda: {
            "frames_read": read[0], "frames_sent": ledger.delivered,
            "frames_dropped": dict(ledger.dropped),
            "latency_ms": _recent_median(latency.values)}))
        try:
            await pipe.run(frames())
        finally:
            watch.cancel()
            extra.cancel()
        bye = wire.Bye(read[0], ledger.delivered, dict(ledger.dropped), ledger.dropped_runs())
        await endpoint.close(bye)
        if endpoint.refusal is not None:
            print(f"semstream send: the receiver refused the session: {endpoint.refusal}",
                  file=log)
    finally:
        core.close()
        await source.close()
        if not endpoint.ended:
            await endpoint.close()
    seconds = time.monotonic() - started
    skipped = core.ledger.modes.get("skip", 0)
    # what was read and skipped comes from the core; what went on the channel from on_air
    on_air.source_values, on_air.modes["skip"] = core.ledger.source_values, skipped
    report = {
        "role": "sender", "source": source.name, "end_reason": endpoint.end_reason,
        "refused": endpoint.refusal,
        "frames_read": read[0], "frames_sent": ledger.delivered,
        "frames_delivered": ledger.delivered, "frames_skipped": skipped,
        "frames_dropped": dict(ledger.dropped),
        "frames_unaccounted": read[0] - skipped - ledger.accounted,
        "frames_reported_lost": len(lost.reported), "frames_repaired": core.lost_repaired,
        "lost_reports_refused": dict(lost.refused),
        "fps": round(read[0] / seconds, 3) if seconds else None,
        **latency.summary(),
        **on_air.summary(read[0]),
        "stages": pipe.stats()["stages"], "peer": endpoint.stats(),
        "selected_pairs": [list(map(list, p)) for p in endpoint.selected_pairs()],
    }
    return report


def _recent_median(values: list[float], count: int = 90) -> float | None:
    """Median of the last ``count`` values (None when there are none)."""
    recent = values[-count:]
    return round(statistics.median(recent), 1) if recent else None


async def _stop_when_ended(endpoint, pipe: Pipeline) -> None:
    """Stop the source once the session has ended (peer gone)."""
    while not endpoint.ended:
        await asyncio.sleep(0.1)
    pipe.stop()


# --- receiver -------------------------------------------------------------------------

class _ReceiverSession:
    """State of one receive session shared by its stages and the viewer's callbacks."""

    def __init__(self, core: ReceiverCore, sinks: list, out: Path | None, log,
                 hooks: ReceiveHooks | None = None) -> None:
        self.core, self.sinks, self.out, self.log = core, sinks, out, log
        self.hooks = hooks or ReceiveHooks()
        self.file_sink = None
        self.channel = ChannelLedger()
        self.latency = LatencyStats()
        self.bye: wire.Bye | None = None
        self.hello: wire.Hello | None = None
        self.frames_in = 0
        self.temporal = False  # a frame with a cell map arrived: the sender codes temporally
        self.lost_reported: list[int] = []  # frame indices reported lost to the sender
        self.first_out: float | None = None
        self.last_out: float | None = None
        self.outputs = 0
        self.outputs_by_mode: Counter[str] = Counter()  # key, direct, interpolated, ...
        self.started = time.monotonic()
        self.refused: str | None = None  # why the session was refused, if it was

    async def messages(self, endpoint: ReceiverEndpoint) -> AsyncIterator:
        async for msg in endpoint.messages():
            if isinstance(msg, wire.Hello):
                try:
                    if not self.core.start(msg.params):
                        continue  # a second Hello: refused and counted by the core
                except Invalid as err:  # a session this receiver cannot decode
                    print(f"semstream receive: refused the session: {err}", file=self.log)
                    self.refused = str(err)
                    await endpoint.refuse(err.reason, err.detail)  # the sender says why too
                    return
                self.hello = msg
                print(f"semstream receive: sender connected ({msg.params.width}x"
                      f"{msg.params.height} at {msg.params.fps:g} fps, skip "
                      f"{msg.params.skip}, SNR {msg.params.snr_db:g} dB)", file=self.log)
            elif isinstance(msg, wire.Bye):
                self.bye = msg
            elif isinstance(msg, wire.Control):
                if self.hooks.message(msg):
                    yield msg
            elif isinstance(msg, (wire.FrameMsg, wire.Background)):
                self.frames_in += isinstance(msg, wire.FrameMsg)
                if self.frames_in == 1 and isinstance(msg, wire.FrameMsg):
                    print(f"semstream receive: first frame in after "
                          f"{time.monotonic() - self.started:.1f} s", file=self.log)
                self.temporal = self.temporal or bool(getattr(msg, "cells", b""))
                self.channel.add_message(msg)
                yield msg

    async def report_lost(self, endpoint: ReceiverEndpoint) -> None:
        """Every LOST_PERIOD_S until the session ends: the frames the core lost since the
        last look (each once, the latest MAX_LOST_FRAMES when more), sent to the sender as
        Control LOST once it codes temporally (held until then)."""
        pending: list[int] = []
        done = set(self.lost_reported)
        while not endpoint.ended:
            await asyncio.sleep(LOST_PERIOD_S)
            for i in self.core.take_lost():
                if i not in done and i not in pending:
                    pending.append(i)
            pending = pending[-wire.MAX_LOST_FRAMES:]
            if not pending or not self.temporal:
                continue
            try:
                await endpoint.send(wire.Control(wire.ControlTopic.LOST, {"frames": pending}))
            except PeerGone:
                return
            self.lost_reported += pending
            done.update(pending)
            pending = []

    def output(self, frame: OutputFrame) -> None:
        """Write one rebuilt frame to every sink; latency is capture to written."""
        if self.out is not None and self.file_sink is None:
            from stream.core.sinks import VideoFileSink

            self.file_sink = VideoFileSink(self.out, self.hello.params.fps)
            self.sinks.append(self.file_sink)
        for sink in self.sinks:
            sink.write(frame)
        self.hooks.write(frame)
        if frame.captured:
            self.latency.add(1000 * (time.time() - frame.captured))
        self.first_out = self.first_out or time.monotonic()
        self.last_out = time.monotonic()
        self.outputs += 1
        self.outputs_by_mode[frame.mode] += 1

    def compose(self, decoded: Decoded) -> list[OutputFrame]:
        """The compose step, after the hooks have seen the message."""
        self.hooks.before_compose(decoded)
        return self.core.compose(decoded)

    def fps_out(self) -> float | None:
        if self.outputs < 2 or self.last_out == self.first_out:
            return None
        return (self.outputs - 1) / (self.last_out - self.first_out)

    def stats(self) -> dict:
        """Live numbers for the viewer page."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        frames = max(self.frames_in, 1)
        return {"fps_in": round(self.frames_in / elapsed, 2),
                "fps_out": round(self.fps_out() or 0.0, 2),
                "channel_uses_per_frame": round(self.channel.total / frames, 1),
                "channel_uses_per_s": round(self.channel.total / elapsed, 1),
                "snr_db": None if self.hello is None else self.hello.params.snr_db,
                "mode": self.core.last_mode, "interp": self.core.interp_on,
                "interp_method": self.core.interp_method,
                "dropped": dict(self.core.ledger.dropped)}


async def receive(listen: Address, token: str, config: ReceiverConfig,
                  out: Path | None = None, view: Address | None = None,
                  pipeline: PipelineConfig | None = None,
                  options: PeerOptions | None = None, log=sys.stderr,
                  ready: Callable[[int, object], None] | None = None,
                  hooks: ReceiveHooks | None = None) -> dict:
    """Serve one sender on ``listen``; returns the receiver's report. ``ready(port,
    viewer)`` is called once listening (the real port when 0 was asked; the
    ``stream.net.viewer.Viewer`` or None)."""
    core = await asyncio.to_thread(ReceiverCore, config)
    await asyncio.to_thread(core.warm_up, 320, 240)
    endpoint = ReceiverEndpoint(listen.host, listen.port, token, options)
    viewer = None
    sinks: list = []
    session = _ReceiverSession(core, sinks, out, log, hooks)
    await endpoint.start()
    if hooks is None:
        _on_interrupt(lambda: asyncio.ensure_future(endpoint.close()))
    session.hooks.attach(core, endpoint, session)
    try:
        if view is not None:
            from stream.net.viewer import Viewer, ViewerSink

            viewer = Viewer(view.host, view.port, session.stats, core.set_interp)
            await viewer.start()
            sinks.append(ViewerSink(viewer))
            print(f"semstream receive: viewer at {viewer.url}", file=log)
        print(f"semstream receive: listening on {listen.host}:{endpoint.port}", file=log)
        if ready is not None:
            ready(endpoint.port, viewer)
        stages = [Stage("decode", core.decode,
                        droppable=lambda m: isinstance(m, wire.FrameMsg)),
                  Stage("compose", session.compose,
                        droppable=lambda d: isinstance(d.msg, wire.FrameMsg)),
                  Stage("output", session.output, droppable=lambda f: False)]
        pipe = Pipeline(stages, pipeline or PipelineConfig(),
                        on_drop=lambda item, reason: core.drop(_frame_index(item), reason))
        reporter = asyncio.ensure_future(session.report_lost(endpoint))
        try:
            await pipe.run(session.messages(endpoint))
        finally:
            reporter.cancel()
            for sink in sinks:
                sink.close()
            session.hooks.close()
    finally:
        if viewer is not None:
            await viewer.stop()
        await endpoint.close()
    bye = session.bye
    frames = core.finish(bye=bye)
    lat = session.latency.summary()
    return {
        "role": "receiver", "end_reason": endpoint.end_reason, "refused": session.refused,
        "frames_sent": None if bye is None else bye.frames_sent,
        "frames_read_by_sender": None if bye is None else bye.frames_read,
        "frames_received": session.frames_in,
        "frames_delivered": core.ledger.delivered,
        "frames_delivered_by_mode": dict(session.outputs_by_mode),
        "frames_dropped": dict(core.ledger.dropped),
        "frames_unaccounted": core.ledger.unaccounted(frames),
        "messages_rejected": dict(core.rejected),
        "frames_reported_lost": len(session.lost_reported),
        "fps": None if session.fps_out() is None else round(session.fps_out(), 3),
        **lat,
        "channel_uses_per_frame": session.channel.total / max(frames, 1),
        "channel_uses_total": session.channel.total,
        "modes": dict(session.channel.modes),
        "interp": core.interp_on, "interp_method": core.interp_method,
        "interp_note": core.interp_note,
        "stages": pipe.stats()["stages"], "peer": endpoint.stats(),
        "viewer": None if viewer is None else viewer.stats(),
        "selected_pairs": [list(map(list, p)) for p in endpoint.selected_pairs()],
    }
