"""The browser viewer of ``semstream receive --view PORT``.

An aiohttp app that serves ``web/viewer.html``; the page receives the rebuilt video
as a WebRTC video track and polls ``GET /stats`` twice a second. Its button posts
``{"on": bool}`` to ``POST /interp``, which calls the receiver's ``set_interp``; the
page then shows the state the receiver reports (``interp`` in its stats, else the
callback's return value), never the button's own idea of it.

The receiver pushes frames with ``push_frame(rgb, FrameInfo(...))``; each connected
page has a bounded queue that drops its oldest frame when the browser falls behind.
Stats the page shows from the receiver's ``stats()`` mapping, where present:
fps_in, fps_out, channel_uses_per_frame, channel_uses_per_s, snr_db, mode, interp,
dropped ({reason: count}); any other keys are listed too.

Glass-to-glass latency: the page reports each displayed frame's RTP timestamp and
display time to ``POST /displayed``; ``SentLog`` maps it back to the frame's capture
time, and ``Viewer.displayed`` collects (capture time, latency) pairs. Browser and
server read the same machine clock, so this holds for pages on the same machine.
"""

from __future__ import annotations

import asyncio
import bisect
import fractions
import hmac
import json
import secrets
import statistics
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
from aiohttp import web
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from stream.net import loopback, signaling
from stream.net.http import serve

if TYPE_CHECKING:
    from stream.core.receiver import OutputFrame

WEB = Path(__file__).with_name("web")
CLOCK = 90_000  # RTP video clock, ticks per second
MAX_REPORTS = 1000  # displayed frames a page may report in one request
TOKEN_HEADER = "X-Semstream-Token"  # carries the session token of control requests
OVERLAYS = ("box", "mask", "interp")  # crop box, foreground mask, interpolated-frame marks


@dataclass(frozen=True)
class FrameInfo:
    """What the viewer knows of a pushed frame: source index, how it was made
    (key | direct | skip | interpolated ...), and its wall-clock capture time (s)."""

    index: int
    mode: str = ""
    captured: float = 0.0


@dataclass(frozen=True)
class ViewerOptions:
    """queue_frames: frames held per page before the oldest is dropped."""

    queue_frames: int = 3


def check_rgb(frame: np.ndarray) -> np.ndarray:
    """frame as H x W x 3 uint8 (RGB); ValueError naming the problem otherwise."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
            or frame.shape[2] != 3 or frame.shape[0] < 2 or frame.shape[1] < 2:
        shape = getattr(frame, "shape", None)
        raise ValueError(f"viewer frame must be H x W x 3 uint8 RGB, got {shape} "
                         f"{getattr(frame, 'dtype', type(frame).__name__)}")
    return frame


class SentLog:
    """Capture times of the frames a track sent, found again from RTP timestamps.

    The page reports the RTP timestamp of each frame it displays; RTP timestamp =
    (origin + pts) mod 2^32 with a random origin chosen by aiortc (and Chromium may be
    a tick off after its own clock conversions). The origin is the one offset that maps
    every timestamp of the first reports onto pts values sent here, within TOLERANCE.
    """

    TOLERANCE = 2  # 90 kHz ticks

    def __init__(self, size: int = 900) -> None:
        self._captured: OrderedDict[int, float] = OrderedDict()
        self._size = size
        self.origin: int | None = None

    def sent(self, pts: int, captured: float) -> None:
        """Record a frame handed to the encoder: pts in 90 kHz ticks, captured wall time (s)."""
        self._captured[pts] = captured
        while len(self._captured) > self._size:
            self._captured.popitem(last=False)

    def _find(self, pts_list: list[int], rtp: int, origin: int) -> int | None:
        target = (rtp - origin) % 2**32
        i = bisect.bisect_left(pts_list, target - self.TOLERANCE)
        if i < len(pts_list) and abs(pts_list[i] - target) <= self.TOLERANCE:
            return pts_list[i]
        return None

    def captured(self, rtp: list[int]) -> list[float | None]:
        """Capture times for reported RTP timestamps (None where unknown)."""
        pts_list = list(self._captured)  # increasing
        if self.origin is None and len(rtp) >= 3:
            self.origin = next((origin for origin in ((rtp[0] - p) % 2**32 for p in pts_list)
                                if all(self._find(pts_list, r, origin) is not None
                                       for r in rtp)), None)
        if self.origin is None:
            return [None] * len(rtp)
        found = [self._find(pts_list, r, self.origin) for r in rtp]
        return [None if p is None else self._captured[p] for p in found]


class FrameTrack(MediaStreamTrack):
    """A video track fed by push(); recv() waits for the next frame (pts from a 90 kHz clock)."""

    kind = "video"

    def __init__(self, capacity: int, on_sent: Callable[[FrameInfo], None]) -> None:
        super().__init__()
        self._frames: deque[tuple[np.ndarray, FrameInfo]] = deque(maxlen=capacity)
        self._ready = asyncio.Event()
        self._on_sent = on_sent
        self._start: float | None = None
        self.log = SentLog()
        self.dropped = 0

    def push(self, frame: np.ndarray, info: FrameInfo) -> None:
        """Queue a frame, dropping the oldest one when full."""
        if len(self._frames) == self._frames.maxlen:
            self.dropped += 1
        self._frames.append((frame, info))
        self._ready.set()

    async def recv(self) -> av.VideoFrame:
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        image, info = self._frames.popleft()
        now = time.monotonic()
        self._start = now if self._start is None else self._start
        frame = av.VideoFrame.from_ndarray(_even(image), format="rgb24")
        frame.pts = int((now - self._start) * CLOCK)
        frame.time_base = fractions.Fraction(1, CLOCK)
        if info.captured:
            self.log.sent(frame.pts, info.captured)
        self._on_sent(info)
        return frame

    def stop(self) -> None:
        super().stop()
        self._ready.set()


def _even(image: np.ndarray) -> np.ndarray:
    """Crop to even height and width (the VP8 encoder's 4:2:0 input needs them)."""
    h, w = image.shape[0] & ~1, image.shape[1] & ~1
    return image if (h, w) == image.shape[:2] else np.ascontiguousarray(image[:h, :w])


@dataclass
class _Page:
    pc: RTCPeerConnection
    track: FrameTrack
    original: FrameTrack | None = None


class Viewer:
    """The viewer web app on host:port (see the module docstring).

    With ``semstream live`` (``stream.net.demo``) it also has: ``original``: a second
    track with the source frames (pushed with ``push_original``; shown beside the
    rebuilt ones); ``control(request) -> state``: called for ``POST /control`` whose
    ``X-Semstream-Token`` header holds ``token`` (raises ``ValueError`` with a
    ``reason`` attribute to refuse); ``live()``: more numbers for ``/stats`` under
    "live"; ``overlays``: which marks the page asked for (``POST /overlay``)."""

    def __init__(self, host: str, port: int,
                 stats: Callable[[], Mapping[str, object]] | None = None,
                 set_interp: Callable[[bool], bool] | None = None,
                 options: ViewerOptions | None = None, *,
                 control: Callable[[dict], Awaitable[dict]] | None = None,
                 token: str | None = None, original: bool = False,
                 live: Callable[[], Mapping[str, object]] | None = None) -> None:
        self.host, self.port = host, port
        self._control, self._token, self._live = control, token, live
        self.original = original
        self.overlays = dict.fromkeys(OVERLAYS, False)
        self.options = options or ViewerOptions()
        self._stats = stats or dict
        self._set_interp = set_interp
        self._interp_reply: bool | None = None
        self._pages: dict[str, _Page] = {}
        self._runner: web.AppRunner | None = None
        self.frames_in = self.frames_out = 0
        self.last_info: FrameInfo | None = None
        self._handoff = deque(maxlen=300)   # s from capture to handing a frame to the encoder
        self._out_times = deque(maxlen=60)  # monotonic times of frames sent to a page
        #: (capture wall time, glass-to-glass latency) in s of frames a page displayed
        self.displayed: deque[tuple[float, float]] = deque(maxlen=100_000)

    @property
    def url(self) -> str:
        """Address of the page."""
        return f"http://{signaling.url_host(self.host)}:{self.port}/"

    async def start(self) -> None:
        """Start serving; OSError naming the address when the port cannot be bound."""
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_static("/static/", WEB)
        app.router.add_post("/offer", self._offer)
        app.router.add_get("/stats", self._stats_json)
        app.router.add_post("/interp", self._interp)
        app.router.add_post("/displayed", self._displayed)
        app.router.add_post("/control", self._control_request)
        app.router.add_post("/overlay", self._overlay)
        self._runner, self.port = await serve(app, self.host, self.port, "viewer")

    async def stop(self) -> None:
        """Close every page's connection and stop serving."""
        for page_id in list(self._pages):
            await self._drop_page(page_id)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def push_frame(self, frame_rgb: np.ndarray, info: FrameInfo) -> None:
        """Offer one rebuilt frame (H x W x 3 uint8 RGB) to every connected page. The array
        is queued by reference: do not modify it afterwards."""
        check_rgb(frame_rgb)
        self.frames_in += 1
        self.last_info = info
        for page in self._pages.values():
            page.track.push(frame_rgb, info)

    def push_original(self, frame_rgb: np.ndarray, info: FrameInfo) -> None:
        """Offer the source frame that matches a rebuilt one to every page's original pane
        (only with ``original``; shown locally, never sent over the simulated channel)."""
        check_rgb(frame_rgb)
        for page in self._pages.values():
            if page.original is not None:
                page.original.push(frame_rgb, info)

    def stats(self) -> dict[str, object]:
        """Viewer-side counters: frames pushed and sent, drops, latencies (ms)."""
        times = self._out_times
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        recent = [latency for _, latency in list(self.displayed)[-300:]]
        return {"pages": len(self._pages), "frames_in": self.frames_in,
                "frames_out": self.frames_out,
                "fps_out": round((len(times) - 1) / span, 2) if span > 0 else 0.0,
                "dropped": sum(p.track.dropped for p in self._pages.values()),
                "handoff_latency_ms_median": _median_ms(self._handoff),
                "glass_to_glass_ms_median": _median_ms(recent),
                "frames_displayed_timed": len(self.displayed)}

    def selected_pairs(self) -> list[tuple[loopback.Address, loopback.Address]]:
        """Nominated ICE pairs of every connected page."""
        return [pair for p in self._pages.values() for pair in loopback.selected_pairs(p.pc)]

    # -- handlers ----------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB / "viewer.html")

    async def _offer(self, request: web.Request) -> web.Response:
        offer = await signaling.read_offer(request)
        pc = RTCPeerConnection(loopback.rtc_configuration())
        track = FrameTrack(self.options.queue_frames, self._sent)
        pc.addTrack(track)
        original = None
        if self.original:  # the page's second video transceiver
            original = FrameTrack(self.options.queue_frames, lambda info: None)
            pc.addTrack(original)
        answer = await signaling.answer_offer(pc, offer, loopback.is_loopback(self.host))
        page_id = secrets.token_hex(8)
        self._pages[page_id] = _Page(pc, track, original)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._drop_page(page_id)

        return signaling.answer_response(answer, page=page_id)

    async def _drop_page(self, page_id: str) -> None:
        page = self._pages.pop(page_id, None)
        if page is not None:
            page.track.stop()
            if page.original is not None:
                page.original.stop()
            await page.pc.close()

    def _sent(self, info: FrameInfo) -> None:
        self.frames_out += 1
        self._out_times.append(time.monotonic())
        if info.captured:
            self._handoff.append(time.time() - info.captured)

    async def _displayed(self, request: web.Request) -> web.Response:
        """A page reports displayed frames: {"page": id, "frames": [[rtp, epoch_ms], ...]}."""
        try:
            body = await request.json()
            page = self._pages[body["page"]]
            reports = [(int(rtp) % 2**32, float(ms) / 1000)
                       for rtp, ms in body["frames"][:MAX_REPORTS]]
        except (ValueError, KeyError, TypeError):
            raise web.HTTPBadRequest(text='body must be JSON {"page": id, "frames": '
                                          '[[rtp, display_epoch_ms], ...]}') from None
        captured = page.track.log.captured([rtp for rtp, _ in reports])
        for (_, shown), when in zip(reports, captured, strict=True):
            if when is not None:
                self.displayed.append((when, shown - when))
        return web.json_response({"matched": sum(c is not None for c in captured)})

    def _interp_state(self, receiver: Mapping[str, object]) -> bool | None:
        state = receiver.get("interp", self._interp_reply)
        return None if state is None else bool(state)

    async def _stats_json(self, request: web.Request) -> web.Response:
        receiver = dict(self._stats())
        info = self.last_info
        body = {"receiver": receiver, "viewer": self.stats(),
                "frame": None if info is None else info.__dict__,
                "interp": self._interp_state(receiver),
                "interp_switch": self._set_interp is not None,
                "controls": self._control is not None, "original": self.original,
                "overlays": self.overlays,
                "live": None if self._live is None else dict(self._live())}
        return web.json_response(body, dumps=lambda x: json.dumps(x, default=str))

    def _check_token(self, request: web.Request) -> None:
        given = request.headers.get(TOKEN_HEADER, "")
        if self._token is None or not hmac.compare_digest(given.encode(), self._token.encode()):
            raise web.HTTPForbidden(text="refused: wrong or missing session token (open the "
                                         "address semstream live printed, with its #token)")

    async def _control_request(self, request: web.Request) -> web.Response:
        """A change of the session's settings: ``{"snr_db": 0, ...}``; the reply is the
        state of both ends after it, or 400 with the reason it was refused."""
        if self._control is None:
            raise web.HTTPNotFound(text="this viewer has no controls (semstream live has)")
        self._check_token(request)
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="refused: the request is not JSON") from None
        try:
            state = await self._control(body)
        except ValueError as exc:
            return web.json_response({"refused": getattr(exc, "reason", "refused"),
                                      "error": str(exc)}, status=400)
        return web.json_response(state, dumps=lambda x: json.dumps(x, default=str))

    async def _overlay(self, request: web.Request) -> web.Response:
        """Which overlays to draw on the rebuilt pane: ``{"box": bool, ...}`` (OVERLAYS)."""
        self._check_token(request)
        try:
            body = await request.json()
            changes = {k: body[k] for k in body}
        except (ValueError, TypeError):
            raise web.HTTPBadRequest(text="refused: the request is not a JSON object") from None
        bad = [k for k, v in changes.items() if k not in OVERLAYS or not isinstance(v, bool)]
        if bad:
            raise web.HTTPBadRequest(text=f"refused: overlay {bad[0]!r} is not one of "
                                          f"{', '.join(OVERLAYS)} set to true or false")
        self.overlays.update(changes)
        return web.json_response(self.overlays)

    async def _interp(self, request: web.Request) -> web.Response:
        if self._set_interp is None:
            raise web.HTTPNotFound(text="this receiver has no interpolation switch")
        try:
            on = (await request.json())["on"]
        except (ValueError, KeyError, TypeError):
            raise web.HTTPBadRequest(text='body must be JSON {"on": true|false}') from None
        if not isinstance(on, bool):
            raise web.HTTPBadRequest(text='"on" must be true or false')
        self._interp_reply = bool(self._set_interp(on))
        return web.json_response({"on": self._interp_state(dict(self._stats()))})


class ViewerSink:
    """Pushes frames to a ``Viewer`` (which serves them to browser pages)."""

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        self.frames = 0

    def write(self, frame: OutputFrame) -> None:
        """Offer one frame to every connected page."""
        self.viewer.push_frame(frame.image, FrameInfo(frame.index, frame.mode, frame.captured))
        self.frames += 1

    def close(self) -> None:
        """Nothing to flush (the viewer is stopped by its owner)."""


def _median_ms(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(1000 * statistics.median(values), 1) if values else None
