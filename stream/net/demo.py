"""``semstream live``: sender, receiver and viewer in one process over loopback WebRTC.

The sender (``live.send``) and the receiver (``live.receive``) are the real peers with a
fresh token, on 127.0.0.1; the viewer serves the rebuilt video, and beside it, when asked
for, the original frames (kept in this process: never sent over the simulated channel and
never counted). The page's controls (``stream.core.control``) go viewer -> receiver ->
data channel (Control CONFIG) -> sender, which checks them again and applies them between
two frames; it answers with Control STATE (the settings in force from a frame index on,
or why it refused), sent before that frame, and reports its live figures every
``STATS_PERIOD_S`` (Control STATS). PSNR is measured here only, where the original is
known. Ctrl-C stops the source; the sender says bye and both reports are returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import sys
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from jscc.metrics import psnr_from_mse
from stream.core import control, wire
from stream.core.config import PipelineConfig, ReceiverConfig, SenderConfig
from stream.core.receiver import Decoded, OutputFrame, ReceiverCore
from stream.core.sender import Analysis, SenderCore
from stream.net import live
from stream.net.peer import PeerGone, ReceiverEndpoint, SenderEndpoint
from stream.net.viewer import FrameInfo, Viewer

STATS_PERIOD_S = 0.5   # how often the sender reports its figures
ANSWER_TIMEOUT_S = 3.0  # longest wait for the sender's answer to a request
WINDOW_S = 1.0         # live rates are measured over this window
KEEP_ORIGINALS = 120   # source frames held for the original pane and PSNR
EXECUTOR_WORKERS = 24  # threads for blocking work (stages, reads, video encoders)


@dataclass(frozen=True)
class LiveConfig:
    """One live demo: the source spec (``live.open_source``), both ends' settings, the
    viewer's address, ``original``: show the source frames beside the rebuilt ones,
    ``loop``: start a video file over at its end, ``out``: also write the rebuilt video,
    ``seconds``: stop by itself after this long (None: at the source's end or Ctrl-C).
    Real time with both ends on one 2-core machine (bench/bench_live.py): ``threads``:
    torch intra-op threads for the whole process (both ends' stages already run in
    parallel threads; more oversubscribes the cores); ``scene_every``: the sender's ORB
    scene check runs on every n-th analysed frame only (a cut is seen up to n-1 frames
    late; the change mask covers the crop meanwhile)."""

    source: str
    sender: SenderConfig = SenderConfig()
    receiver: ReceiverConfig = ReceiverConfig()
    view_host: str = "127.0.0.1"
    view_port: int = 8080
    original: bool = False
    loop: bool = False
    fps: float = 30.0
    max_frames: int | None = None
    out: Path | None = None
    seconds: float | None = None
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    threads: int = 1
    scene_every: int = 3

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if self.scene_every < 1:
            raise ValueError(f"scene_every must be at least 1, got {self.scene_every}")


class Originals:
    """Source frames and the sender's foreground masks by index (thread-safe, bounded)."""

    def __init__(self, keep: int = KEEP_ORIGINALS) -> None:
        self._items: OrderedDict[int, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def put(self, index: int, image: np.ndarray, mask: np.ndarray | None) -> None:
        """Keep frame ``index`` (H x W x 3 uint8) and its mask (H x W bool or None)."""
        with self._lock:
            self._items[index] = (image, mask)
            while len(self._items) > self._keep:
                self._items.popitem(last=False)

    def get(self, index: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(image, mask) of frame ``index``; (None, None) when not held."""
        with self._lock:
            return self._items.get(index, (None, None))


def frame_psnr(original: np.ndarray, rebuilt: np.ndarray,
               mask: np.ndarray | None = None) -> float | None:
    """PSNR (dB) of two H x W x 3 uint8 frames, over the pixels where ``mask`` (H x W bool)
    is set when given; None for an empty mask. (cv2.norm: a fraction of numpy's cost.)"""
    if mask is None:
        count = original.size
        sse = cv2.norm(original, rebuilt, cv2.NORM_L2SQR)
    else:
        m = mask.astype(np.uint8)
        count = 3 * int(cv2.countNonZero(m))
        if count == 0:
            return None
        sse = cv2.norm(original, rebuilt, cv2.NORM_L2SQR, mask=m)
    return round(min(psnr_from_mse(sse / count), 99.0), 2)


# --- sender side -------------------------------------------------------------------------

class SparseScenes:
    """A scene segmenter that looks at every ``every``-th frame only and repeats its last
    answer (with no cut) in between (``dynbg.scenes.SceneSegmenter``'s ``update``)."""

    def __init__(self, scenes, every: int) -> None:
        self.scenes, self.every = scenes, every
        self._count = 0
        self._last = None

    @property
    def segment(self) -> int:
        """The current segment id."""
        return self.scenes.segment

    def update(self, frame: np.ndarray, exclude: np.ndarray | None = None):
        """The scene update of the next frame (H x W x 3 uint8; exclude H x W bool)."""
        self._count += 1
        if self._last is None or self._count % self.every == 0:
            self._last = self.scenes.update(frame, exclude)
            return self._last
        return replace(self._last, cut=False)


class LiveSender(live.SendHooks):
    """The sender's side of the controls; keeps each source frame for the original pane."""

    def __init__(self, config: SenderConfig, originals: Originals,
                 scene_every: int = 1) -> None:
        self.originals = originals
        self.scene_every = scene_every
        self.state = control.state(config)
        self._requests: deque[dict] = deque()  # CONFIG bodies, applied between frames
        self._answers: list[tuple[int, wire.Control]] = []  # (first index, STATE message)
        self._lock = threading.Lock()
        self.applied = self.refused = 0
        self.threads: int | None = None

    def before_analyse(self, core: SenderCore, frame) -> None:
        if core.scenes is not None and not isinstance(core.scenes, SparseScenes) \
                and self.scene_every > 1:
            core.scenes = SparseScenes(core.scenes, self.scene_every)
        while True:
            with self._lock:
                if not self._requests:
                    return
                body = self._requests.popleft()
            answer: dict[str, object] = {"id": body.pop("id", None)}
            try:
                request = control.sender_part(control.check_request(body))
                core.reconfigure(control.apply(core.config, request))
            except ValueError as exc:  # ControlError, or a config the core refuses
                self.refused += 1
                answer.update(refused=getattr(exc, "reason", "bad-config"), error=str(exc))
            else:
                self.applied += 1
                self.state = control.state(core.config)
                answer["from_index"] = frame.index
            answer.update(self.state)
            with self._lock:
                self._answers.append((frame.index, wire.Control(wire.ControlTopic.STATE,
                                                                answer)))

    def analysed(self, analysis: Analysis) -> None:
        self.originals.put(analysis.frame.index, analysis.frame.image, analysis.mask)

    def outgoing(self, index: int) -> list[wire.Message]:
        with self._lock:
            ready = [m for first, m in self._answers if first <= index]
            self._answers = [(f, m) for f, m in self._answers if f > index]
        return ready

    async def run(self, endpoint: SenderEndpoint, figures) -> None:
        if self.threads is not None:  # both cores have set theirs while loading
            import torch

            torch.set_num_threads(self.threads)
        reader = asyncio.ensure_future(self._read(endpoint))
        last = (time.monotonic(), 0)
        try:
            while not endpoint.ended:
                await asyncio.sleep(STATS_PERIOD_S)
                now, numbers = time.monotonic(), figures()
                fps = (numbers["frames_read"] - last[1]) / max(now - last[0], 1e-6)
                last = (now, numbers["frames_read"])
                body = {**numbers, **self.state, "fps_in": round(fps, 2),
                        "controls_applied": self.applied, "controls_refused": self.refused}
                with contextlib.suppress(PeerGone):
                    await endpoint.send(wire.Control(wire.ControlTopic.STATS, body))
        finally:
            reader.cancel()

    async def _read(self, endpoint: SenderEndpoint) -> None:
        async for msg in endpoint.messages():
            if isinstance(msg, wire.Control) and msg.topic == wire.ControlTopic.CONFIG:
                with self._lock:
                    self._requests.append(dict(msg.body))


# --- receiver side -----------------------------------------------------------------------

@dataclass
class _Sample:
    """Counters at one output frame (for rates over a window)."""

    t: float
    frame_uses: int
    background_uses: int
    side_uses: int
    frames_in: int
    outputs: int


class LiveReceiver(live.ReceiveHooks):
    """The receiver's side: forwards the page's requests, follows the sender's state,
    measures PSNR against the local original, draws overlays and feeds the viewer."""

    def __init__(self, originals: Originals, original_pane: bool) -> None:
        self.originals = originals
        self.original_pane = original_pane
        self.viewer: Viewer | None = None
        self.core: ReceiverCore | None = None
        self.endpoint: ReceiverEndpoint | None = None
        self.session = None
        self.sender: dict[str, object] = {}   # the sender's last STATS
        self.sender_state: dict[str, object] = {}  # its last STATE answer
        self._sender_seen = 0.0
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._frames: OrderedDict[int, wire.FrameMsg] = OrderedDict()  # for overlays
        self._samples: deque[_Sample] = deque(maxlen=400)
        self._quality: deque[tuple[float, float | None, float | None]] = deque(maxlen=400)
        self.last_rate_level: int | None = None
        self.last_error: str | None = None

    # -- ReceiveHooks ----------------------------------------------------------------

    def attach(self, core: ReceiverCore, endpoint: ReceiverEndpoint, session) -> None:
        self.core, self.endpoint, self.session = core, endpoint, session
        self._loop = asyncio.get_running_loop()

    def message(self, msg: wire.Control) -> bool:
        if msg.topic == wire.ControlTopic.STATS:
            self.sender, self._sender_seen = dict(msg.body), time.monotonic()
            return False
        if msg.topic != wire.ControlTopic.STATE:
            return False
        body = dict(msg.body)
        waiting = self._waiting.pop(body.get("id"), None) if isinstance(
            body.get("id"), int) else None
        if waiting is not None and not waiting.done():
            waiting.set_result(body)
        if "from_index" in body:
            self.sender_state = body
            return True  # the skip factor changes in compose order
        return False

    def before_compose(self, decoded: Decoded) -> None:
        msg = decoded.msg
        if isinstance(msg, wire.Control):
            first, skip = msg.body.get("from_index"), msg.body.get("skip")
            if isinstance(first, int) and isinstance(skip, int) and 0 <= skip <= \
                    control.SKIP_MAX and first >= 0:
                self.core.set_skip(skip, first)
        elif isinstance(msg, wire.FrameMsg):
            self._frames[msg.index] = msg
            while len(self._frames) > 8:
                self._frames.popitem(last=False)
            if msg.symbols.size:
                self.last_rate_level = msg.rate_level

    def write(self, frame: OutputFrame) -> None:
        original, mask = self.originals.get(frame.index)
        whole = fg = None
        if original is not None and original.shape == frame.image.shape:
            whole = frame_psnr(original, frame.image)
            if mask is not None and mask.any():
                fg = frame_psnr(original, frame.image, mask)
        now = time.monotonic()
        self._quality.append((now, whole, fg))
        s = self.session
        ch = s.channel
        self._samples.append(_Sample(now, ch.frame_uses, ch.background_uses, ch.side_uses,
                                     s.frames_in, s.outputs + 1))
        viewer = self.viewer
        if viewer is None:
            return
        info = FrameInfo(frame.index, frame.mode, frame.captured)
        viewer.push_frame(self._overlaid(frame, mask), info)
        if self.original_pane and original is not None:
            viewer.push_original(original, info)

    # -- overlays --------------------------------------------------------------------

    def _overlaid(self, frame: OutputFrame, mask: np.ndarray | None) -> np.ndarray:
        """The rebuilt frame with the overlays the page asked for (a copy; the frame
        written to file and scored stays clean)."""
        wanted = self.viewer.overlays
        if not any(wanted.values()):
            return frame.image
        image = frame.image.copy()
        if wanted["mask"] and mask is not None and mask.shape == image.shape[:2]:
            tint = image[mask].astype(np.uint16)
            tint[:, 1] = np.minimum(tint[:, 1] + 80, 255)
            image[mask] = tint.astype(np.uint8)
        msg = self._frames.get(frame.index)
        if wanted["box"] and msg is not None and msg.mode == wire.Mode.KEY and msg.box[2] > 0:
            x1, y1, x2, y2 = msg.box
            cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), (255, 210, 0), 2)
        if wanted["interp"] and frame.mode == "interpolated":
            h, w = image.shape[:2]
            cv2.rectangle(image, (0, 0), (w - 1, h - 1), (230, 40, 200), 6)
            cv2.putText(image, "interpolated", (12, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                        (230, 40, 200), 2)
        return image

    # -- the page's requests -----------------------------------------------------------

    async def request(self, body: object) -> dict:
        """A request from the page: checked here, its sender part forwarded and answered
        by the sender; the interpolation method set here. Returns both ends' state;
        ControlError (a ValueError with ``reason``) when refused here or by the sender."""
        checked = control.check_request(body)
        part = control.sender_part(checked)
        if part:
            if self.endpoint is None or self.endpoint.ended or self.endpoint.hello is None:
                raise control.ControlError("no-sender", "no sender is connected yet")
            ident = next(self._ids)
            answer = self._loop.create_future()
            self._waiting[ident] = answer
            await self.endpoint.send(wire.Control(wire.ControlTopic.CONFIG,
                                                  {"id": ident, **part}))
            try:
                reply = await asyncio.wait_for(answer, ANSWER_TIMEOUT_S)
            except TimeoutError:
                self._waiting.pop(ident, None)
                raise control.ControlError("no-answer", f"the sender did not answer within "
                                                        f"{ANSWER_TIMEOUT_S:g} s") from None
            if "refused" in reply:
                self.last_error = f"sender refused: {reply.get('error')}"
                raise control.ControlError(str(reply["refused"]), self.last_error)
        if "interp" in checked:
            await asyncio.to_thread(self.core.set_interp_method, checked["interp"])
        self.last_error = None
        return self.live()

    # -- numbers for the page ------------------------------------------------------------

    def receiver_stats(self) -> dict:
        """The receiver's table (``live._ReceiverSession.stats``) with the sender's SNR
        as it last reported it."""
        if self.session is None:
            return {}
        stats = self.session.stats()
        if "snr_db" in self.sender:
            stats["snr_db"] = self.sender["snr_db"]
        return stats

    def live(self) -> dict:
        """Both ends' state and the figures of the last WINDOW_S (JSON-ready)."""
        core = self.core
        receiver = {} if core is None else {
            "interp": core.interp_method if core.interp_on else "off",
            "interp_loaded": core.interp_method, "interp_note": core.interp_note,
            "skip": core.state.skip, "mode": core.last_mode}
        sender = {**self.sender, "age_s": round(time.monotonic() - self._sender_seen, 2)
                  if self._sender_seen else None}
        return {"sender": sender, "receiver": receiver, "window": self._window(),
                "error": self.last_error, "original": self.original_pane}

    def _window(self) -> dict:
        samples = list(self._samples)
        now = time.monotonic()
        recent = [q for q in self._quality if now - q[0] <= WINDOW_S]
        out: dict[str, object] = {
            "psnr": _mean([q[1] for q in recent]), "psnr_fg": _mean([q[2] for q in recent]),
            "rate_level": self.last_rate_level}
        if self.viewer is not None:
            shown = [lat for t, lat in list(self.viewer.displayed)[-60:]]
            out["glass_to_glass_ms"] = round(1000 * float(np.median(shown)), 1) if shown \
                else None
            out["fps_shown"] = self.viewer.stats()["fps_out"]
        if self.session is not None:
            out["latency_ms"] = live._recent_median(self.session.latency.values, 30)
        if len(samples) < 2 or now - samples[-1].t > 2 * WINDOW_S:
            return out
        last = samples[-1]
        first = next((s for s in samples if last.t - s.t <= WINDOW_S), samples[0])
        span = max(last.t - first.t, 1e-6)
        frames = max(last.frames_in - first.frames_in, 0)
        uses = {"frames": last.frame_uses - first.frame_uses,
                "backgrounds": last.background_uses - first.background_uses,
                "side_info": last.side_uses - first.side_uses}
        out["channel_uses_per_s"] = {k: round(v / span) for k, v in uses.items()}
        out["channel_uses_per_frame"] = {k: round(v / frames) for k, v in uses.items()} \
            if frames else None
        out["fps_in"] = round(frames / span, 2)
        out["fps_out"] = round((last.outputs - first.outputs) / span, 2)
        return out


def _mean(values: list) -> float | None:
    finite = [v for v in values if v is not None]
    return round(float(np.mean(finite)), 2) if finite else None


# --- the whole demo ------------------------------------------------------------------------

async def run_live(config: LiveConfig, log=sys.stderr,
                   ready=None) -> tuple[dict, dict]:
    """Run the demo until the source ends, ``config.seconds`` pass or Ctrl-C; returns the
    (sender, receiver) reports. ``ready(url, viewer)`` is called with the page's address
    (with its token) and the ``Viewer`` once it serves the page."""
    # Both ends' pipeline stages, the source's reads and aiortc's video encoders all run in
    # the loop's default executor: its default 6 workers (2 cores + 4) left the source
    # waiting for a worker (it read 16 frames/s instead of 30).
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=EXECUTOR_WORKERS, thread_name_prefix="live"))
    token = secrets.token_urlsafe(16)
    originals = Originals()
    rx = LiveReceiver(originals, config.original)
    tx = LiveSender(config.sender, originals, config.scene_every)
    tx.threads = config.threads
    viewer = Viewer(config.view_host, config.view_port, rx.receiver_stats,
                    lambda on: rx.core.set_interp(on) if rx.core else False,
                    control=rx.request, token=token, original=config.original, live=rx.live)
    source = live.open_source(config.source, realtime=True, max_frames=config.max_frames,
                              fps=config.fps, loop=config.loop)
    await viewer.start()
    rx.viewer = viewer
    url = f"{viewer.url}#token={token}"
    print(f"semstream live: open {url}", file=log, flush=True)
    if ready is not None:
        ready(url, viewer)
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    rx_task = asyncio.ensure_future(live.receive(
        live.Address("127.0.0.1", 0), token, config.receiver, config.out, None,
        config.pipeline, log=log, ready=lambda p, _: port.set_result(p), hooks=rx))
    timer = None
    try:
        await asyncio.wait([port, rx_task], return_when=asyncio.FIRST_COMPLETED)
        if rx_task.done():
            rx_task.result()  # raises what stopped the receiver
        if config.seconds is not None:
            timer = asyncio.get_running_loop().call_later(
                config.seconds, _interrupt)
        sent = await live.send(source, live.Address("127.0.0.1", port.result()), token,
                               config.sender, config.pipeline, log=log, hooks=tx)
        received = await asyncio.wait_for(rx_task, 15)
        received["viewer"] = viewer.stats()
        received["live"] = rx.live()
    finally:
        if timer is not None:
            timer.cancel()
        if not rx_task.done():
            rx_task.cancel()
        await viewer.stop()
    sent["controls"] = {"applied": tx.applied, "refused": tx.refused}
    return sent, received


def _interrupt() -> None:
    """Stop as Ctrl-C would (the sender's signal handler ends its source)."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGINT)
