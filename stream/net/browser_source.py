"""A browser's webcam as a frame source: the sender serves ``web/camera.html``, the page
calls getUserMedia and offers its video track over WebRTC, and ``frames()`` yields
the decoded frames as ``Frame`` objects (RGB).

``captured`` is the wall-clock time a frame was decoded here (the browser's own
capture clock is not carried by WebRTC); ``pts`` comes from the RTP timestamps,
counted from the first frame. Frames are resized to (width, height) when the
browser sends another size (browsers scale video down under load).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from aiohttp import web
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from dynbg.video import VideoInfo
from stream.core.frames import Frame
from stream.core.sources import Source
from stream.net import loopback, signaling
from stream.net.http import serve

WEB = Path(__file__).with_name("web")


@dataclass(frozen=True)
class CameraOptions:
    """Capture size asked of the browser (pixels), frame rate (1/s), and how long to wait
    without a frame before the source ends (s)."""

    width: int = 640
    height: int = 480
    fps: float = 30.0
    frame_timeout_s: float = 5.0


class BrowserSource:
    """Serves the webcam page on host:port; ``frames()`` yields what the first page sends."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 options: CameraOptions | None = None) -> None:
        self.host, self.port = host, port
        self.options = options or CameraOptions()
        self.pc: RTCPeerConnection | None = None
        self._track: asyncio.Future[MediaStreamTrack] | None = None
        self._runner: web.AppRunner | None = None
        self.end_reason: str | None = None

    @property
    def url(self) -> str:
        """Address of the webcam page."""
        return f"http://{signaling.url_host(self.host)}:{self.port}/"

    async def start(self) -> None:
        """Start serving the page; OSError naming the address when the port is taken."""
        self._track = asyncio.get_running_loop().create_future()
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_static("/static/", WEB)
        app.router.add_get("/config", self._config)
        app.router.add_post("/offer", self._offer)
        self._runner, self.port = await serve(app, self.host, self.port, "webcam page")

    async def stop(self) -> None:
        """Close the browser's connection and stop serving."""
        if self.pc is not None:
            await self.pc.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def frames(self, connect_timeout_s: float | None = None) -> AsyncIterator[Frame]:
        """Frames from the browser's track: waits for a page to connect (at most
        connect_timeout_s, None = forever), ends when the track ends or stalls."""
        if self._track is None:
            raise RuntimeError("call start() before frames()")
        try:
            track = await asyncio.wait_for(asyncio.shield(self._track), connect_timeout_s)
        except TimeoutError:
            raise TimeoutError(f"no browser opened {self.url} within {connect_timeout_s:g} s"
                               ) from None
        size = (self.options.width, self.options.height)
        first_time: float | None = None
        index = 0
        while True:
            try:
                video = await asyncio.wait_for(track.recv(), self.options.frame_timeout_s)
            except MediaStreamError:
                self.end_reason = "track_ended"
                return
            except TimeoutError:
                self.end_reason = "stalled"
                return
            captured = time.time()
            image = _resize(video.to_ndarray(format="rgb24"), size)
            stamp = float(video.time) if video.time is not None else captured
            first_time = stamp if first_time is None else first_time
            yield Frame(image=image, index=index, pts=stamp - first_time, captured=captured)
            index += 1

    def selected_pairs(self) -> list[tuple[loopback.Address, loopback.Address]]:
        """The nominated ICE pair of the browser's connection."""
        return [] if self.pc is None else loopback.selected_pairs(self.pc)

    # -- handlers ----------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB / "camera.html")

    async def _config(self, request: web.Request) -> web.Response:
        o = self.options
        return web.json_response({"width": o.width, "height": o.height, "fps": o.fps})

    async def _offer(self, request: web.Request) -> web.Response:
        offer = await signaling.read_offer(request)
        if self.pc is not None:
            raise web.HTTPConflict(text="a browser is already streaming to this sender")
        pc = self.pc = RTCPeerConnection(loopback.rtc_configuration())

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video" and not self._track.done():
                self._track.set_result(track)

        try:
            answer = await signaling.answer_offer(pc, offer, loopback.is_loopback(self.host))
        except web.HTTPBadRequest:
            self.pc = None
            raise
        return signaling.answer_response(answer)


class BrowserCameraSource(Source):
    """A browser's getUserMedia camera, offered over WebRTC to a page this sender serves."""

    def __init__(self, port: int = 8080, host: str = "127.0.0.1", width: int = 640,
                 height: int = 480, fps: float = 30.0, max_frames: int | None = None,
                 connect_timeout_s: float | None = None) -> None:
        super().__init__(False, max_frames)
        self.browser = BrowserSource(host, port, CameraOptions(width, height, fps))
        self.connect_timeout_s = connect_timeout_s
        self.info = VideoInfo(width, height, fps)
        self.name = "browser"

    async def start(self) -> None:
        await self.browser.start()
        print(f"open {self.browser.url} in a browser to stream its camera", file=sys.stderr)

    async def frames(self) -> AsyncIterator[Frame]:
        n = 0
        async for frame in self.browser.frames(self.connect_timeout_s):
            if self.max_frames is not None and n >= self.max_frames:
                return
            yield frame
            n += 1

    async def close(self) -> None:
        await self.browser.stop()


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
