"""Live sessions: ``semstream send`` and ``semstream receive`` over WebRTC.

Sender: source (paced) -> analyse -> encode (+ channel) -> data channel. Real-time drops
only ever hit frames that would have been sent (a skipped frame costs nothing to keep);
a dropped frame is counted with its reason and listed in the Bye. Receiver: data
channel -> decode -> compose (paste-back, interpolation) -> file and/or viewer. Both end
by themselves when the sender says bye, when the peer vanishes (heartbeat timeout) or on
Ctrl-C, with outputs flushed and a summary printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from stream import background_link, payload, wire
from stream.accounting import ChannelLedger, FrameLedger, LatencyStats
from stream.config import PipelineConfig, ReceiverConfig, SenderConfig
from stream.peer import PeerGone, PeerOptions, ReceiverEndpoint, SenderEndpoint
from stream.pipeline import Pipeline, Stage
from stream.receiver import Decoded, OutputFrame, ReceiverCore
from stream.sender import Analysis, SenderCore, SenderOutput
from stream.sources import Source


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


def _on_interrupt(callback: Callable[[], None]) -> None:
    """Call ``callback`` on Ctrl-C / SIGTERM (where the loop supports signal handlers)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, callback)


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

async def send(source: Source, to: Address, token: str, config: SenderConfig,
               pipeline: PipelineConfig | None = None,
               options: PeerOptions | None = None, log=sys.stderr) -> dict:
    """Stream ``source`` to a receiver at ``to``; returns the sender's report (its
    latency is capture to handed to the data channel; frames_delivered = frames sent)."""
    await source.start()
    core = await asyncio.to_thread(SenderCore, config)
    info = source.info
    await asyncio.to_thread(core.warm_up, info.width, info.height)
    params = wire.SessionParams(info.width, info.height, info.fps, config.skip, config.channel,
                                config.snr_db, config.model, config.segmenter)
    endpoint = SenderEndpoint(to.host, to.port, token, params, options)
    ledger = FrameLedger()
    latency = LatencyStats()  # capture -> handed to the data channel
    read = [0]
    started = time.monotonic()
    try:
        await endpoint.connect()
        print(f"semstream send: connected to {to.host}:{to.port}, streaming {source.name}",
              file=log)

        async def frames() -> AsyncIterator:
            async for frame in source.frames():
                read[0] += 1
                yield frame

        async def transmit(out: SenderOutput) -> None:
            index = out.analysis.frame.index
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
            except PeerGone:
                ledger.drop(index, "peer-gone")
                return
            ledger.deliver(index)
            latency.add(1000 * (time.time() - out.analysis.frame.captured))

        # Skipped frames and background updates are never dropped: a skipped frame costs
        # nothing, and the receiver needs every background.
        stages = [Stage("analyse", core.analyse,
                        droppable=lambda f: not config.skipped(f.index)),
                  Stage("encode", core.encode,
                        droppable=lambda a: a.mode != wire.Mode.SKIP and a.update is None),
                  Stage("transmit", transmit,
                        droppable=lambda o: o.analysis.mode != wire.Mode.SKIP and not any(
                            isinstance(m, wire.Background) for m in o.messages))]
        pipe = Pipeline(stages, pipeline or PipelineConfig(),
                        on_drop=lambda item, reason: ledger.drop(_frame_index(item), reason))
        _on_interrupt(pipe.stop)
        watch = asyncio.ensure_future(_stop_when_ended(endpoint, pipe))
        try:
            await pipe.run(frames())
        finally:
            watch.cancel()
        bye = wire.Bye(read[0], ledger.delivered, dict(ledger.dropped))
        await endpoint.close(bye)
    finally:
        core.close()
        await source.close()
        if not endpoint.ended:
            await endpoint.close()
    seconds = time.monotonic() - started
    skipped = core.ledger.modes.get("skip", 0)
    report = {
        "role": "sender", "source": source.name, "end_reason": endpoint.end_reason,
        "frames_read": read[0], "frames_sent": ledger.delivered,
        "frames_delivered": ledger.delivered, "frames_skipped": skipped,
        "frames_dropped": dict(ledger.dropped),
        "frames_unaccounted": read[0] - skipped - ledger.accounted,
        "fps": round(read[0] / seconds, 3) if seconds else None,
        **latency.summary(),
        **core.ledger.summary(read[0]),
        "stages": pipe.stats()["stages"], "peer": endpoint.stats(),
        "selected_pairs": [list(map(list, p)) for p in endpoint.selected_pairs()],
    }
    return report


async def _stop_when_ended(endpoint, pipe: Pipeline) -> None:
    """Stop the source once the session has ended (peer gone)."""
    while not endpoint.ended:
        await asyncio.sleep(0.1)
    pipe.stop()


# --- receiver -------------------------------------------------------------------------

class _ReceiverSession:
    """State of one receive session shared by its stages and the viewer's callbacks."""

    def __init__(self, core: ReceiverCore, sinks: list, out: Path | None, log) -> None:
        self.core, self.sinks, self.out, self.log = core, sinks, out, log
        self.file_sink = None
        self.channel = ChannelLedger()
        self.latency = LatencyStats()
        self.bye: wire.Bye | None = None
        self.hello: wire.Hello | None = None
        self.frames_in = 0
        self.first_out: float | None = None
        self.last_out: float | None = None
        self.outputs = 0
        self.started = time.monotonic()

    async def messages(self, endpoint: ReceiverEndpoint) -> AsyncIterator:
        async for msg in endpoint.messages():
            if isinstance(msg, wire.Hello):
                self.hello = msg
                self.core.start(msg.params)
                print(f"semstream receive: sender connected ({msg.params.width}x"
                      f"{msg.params.height} at {msg.params.fps:g} fps, skip "
                      f"{msg.params.skip}, SNR {msg.params.snr_db:g} dB)", file=self.log)
            elif isinstance(msg, wire.Bye):
                self.bye = msg
            elif isinstance(msg, wire.FrameMsg):
                self.frames_in += 1
                self.channel.add_frame(msg)
                yield msg
            elif isinstance(msg, wire.Background):
                if msg.kind == wire.BackgroundKind.JSCC:
                    self.channel.add_background(payload.symbol_count(msg.payload))
                elif msg.kind == wire.BackgroundKind.CODED:
                    self.channel.add_background(background_link.channel_uses(msg.payload))
                yield msg

    def output(self, frame: OutputFrame) -> None:
        """Write one rebuilt frame to every sink; latency is capture to written."""
        if self.out is not None and self.file_sink is None:
            from stream.sinks import VideoFileSink

            self.file_sink = VideoFileSink(self.out, self.hello.params.fps)
            self.sinks.append(self.file_sink)
        for sink in self.sinks:
            sink.write(frame)
        if frame.captured:
            self.latency.add(1000 * (time.time() - frame.captured))
        self.first_out = self.first_out or time.monotonic()
        self.last_out = time.monotonic()
        self.outputs += 1

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
                  ready: Callable[[int, object], None] | None = None) -> dict:
    """Serve one sender on ``listen``; returns the receiver's report. ``ready(port,
    viewer)`` is called once listening (the real port when 0 was asked; the
    ``stream.viewer.Viewer`` or None)."""
    from stream.sinks import ViewerSink

    core = await asyncio.to_thread(ReceiverCore, config)
    await asyncio.to_thread(core.warm_up, 320, 240)
    endpoint = ReceiverEndpoint(listen.host, listen.port, token, options)
    viewer = None
    sinks: list = []
    session = _ReceiverSession(core, sinks, out, log)
    await endpoint.start()
    _on_interrupt(lambda: asyncio.ensure_future(endpoint.close()))
    try:
        if view is not None:
            from stream.viewer import Viewer

            viewer = Viewer(view.host, view.port, session.stats, core.set_interp)
            await viewer.start()
            sinks.append(ViewerSink(viewer))
            print(f"semstream receive: viewer at {viewer.url}", file=log)
        print(f"semstream receive: listening on {listen.host}:{endpoint.port}", file=log)
        if ready is not None:
            ready(endpoint.port, viewer)
        stages = [Stage("decode", core.decode,
                        droppable=lambda m: isinstance(m, wire.FrameMsg)),
                  Stage("compose", core.compose,
                        droppable=lambda d: isinstance(d.msg, wire.FrameMsg)),
                  Stage("output", session.output, droppable=lambda f: False)]
        pipe = Pipeline(stages, pipeline or PipelineConfig(),
                        on_drop=lambda item, reason: core.drop(_frame_index(item), reason))
        try:
            await pipe.run(session.messages(endpoint))
        finally:
            for sink in sinks:
                sink.close()
    finally:
        if viewer is not None:
            await viewer.stop()
        await endpoint.close()
    bye = session.bye
    core.finish(None if bye is None else bye.frames_read,
                None if bye is None else dict(bye.dropped))
    frames = bye.frames_read if bye is not None else core.ledger.accounted
    lat = session.latency.summary()
    return {
        "role": "receiver", "end_reason": endpoint.end_reason,
        "frames_sent": None if bye is None else bye.frames_sent,
        "frames_read_by_sender": None if bye is None else bye.frames_read,
        "frames_received": session.frames_in,
        "frames_delivered": core.ledger.delivered,
        "frames_dropped": dict(core.ledger.dropped),
        "frames_unaccounted": core.ledger.unaccounted(frames),
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
