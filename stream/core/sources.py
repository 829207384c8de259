"""Frame sources: a video file, a folder of images, or a webcam.

Every source yields ``stream.core.frames.Frame`` objects (RGB uint8, index from 0, pts in
seconds, ``captured`` = wall-clock time the frame was read) from ``frames()``, an async
iterator; blocking decoding runs in a worker thread. A file or folder is paced at its
frame rate when ``realtime`` (as a camera would deliver it) and read as fast as possible
otherwise. A browser's camera is ``stream.net.browser_source.BrowserCameraSource``;
``stream.net.live.open_source`` picks the source a spec string names.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np

from dynbg.video import VideoInfo
from stream.core.frames import Frame

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class SourceError(ValueError):
    """A source cannot be opened (one line naming it and what to do)."""


class Source:
    """Base: ``info`` and ``frames()``; ``close()`` releases what the source holds."""

    info: VideoInfo
    name: str = "source"

    def __init__(self, realtime: bool = True, max_frames: int | None = None) -> None:
        self.realtime = realtime
        self.max_frames = max_frames

    def _read(self) -> Iterator[tuple[np.ndarray, float]]:
        """Blocking reader of (H x W x 3 uint8 RGB, pts seconds) pairs."""
        raise NotImplementedError

    async def frames(self) -> AsyncIterator[Frame]:
        """Frames in order, paced at pts when ``realtime``."""
        reader = self._read()
        start = time.monotonic()
        index = 0
        try:
            while self.max_frames is None or index < self.max_frames:
                pair = await asyncio.to_thread(next, reader, None)
                if pair is None:
                    return
                image, pts = pair
                if self.realtime:
                    await asyncio.sleep(max(0.0, start + pts - time.monotonic()))
                yield Frame(image, index, pts, time.time())
                index += 1
        finally:
            reader.close()

    async def start(self) -> None:
        """Prepare the source (a no-op except for the browser camera)."""

    async def close(self) -> None:
        """Release the source."""


class VideoFileSource(Source):
    """A video file decoded with PyAV (``dynbg.video``); ``loop`` starts it over at its end
    (pts keep growing), until ``max_frames`` or the session's end."""

    def __init__(self, path: str | Path, realtime: bool = True,
                 max_frames: int | None = None, loop: bool = False) -> None:
        from dynbg.video import probe

        super().__init__(realtime, max_frames)
        self.path = Path(path)
        self.loop = loop
        v = probe(self.path)
        self.info = VideoInfo(v.width, v.height, v.fps or 30.0, v.frames)
        self.name = self.path.name

    def _read(self) -> Iterator[tuple[np.ndarray, float]]:
        from dynbg.video import read_frames

        offset, period = 0.0, 1.0 / self.info.fps
        while True:
            first = last = None
            for f in read_frames(self.path, max_frames=self.max_frames):
                first = f.pts if first is None else first
                last = offset + f.pts - first
                yield f.image, last
            if not self.loop or last is None:
                return
            offset = last + period


class ImageFolderSource(Source):
    """Images of a folder in name order, at ``fps`` frames per second; all must share a size."""

    def __init__(self, folder: str | Path, fps: float = 30.0, realtime: bool = True,
                 max_frames: int | None = None) -> None:
        super().__init__(realtime, max_frames)
        self.folder = Path(folder)
        self.files = sorted(p for p in self.folder.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"folder {self.folder} holds no .png/.jpg/.bmp images")
        first = self._load(self.files[0])
        self.info = VideoInfo(first.shape[1], first.shape[0], fps, len(self.files))
        self.name = self.folder.name

    @staticmethod
    def _load(path: Path) -> np.ndarray:
        from dynbg.library import read_image

        return read_image(path)

    def _read(self) -> Iterator[tuple[np.ndarray, float]]:
        size = (self.info.height, self.info.width)
        for i, p in enumerate(self.files):
            image = self._load(p)
            if image.shape[:2] != size:
                raise SourceError(f"{p} is {image.shape[1]}x{image.shape[0]}, the first image "
                                  f"is {size[1]}x{size[0]}: give images of one size")
            yield image, i / self.info.fps


def webcam_input(device: str | None) -> tuple[str, str]:
    """(PyAV format, device name) of this platform's camera input."""
    if sys.platform.startswith("linux"):
        return "v4l2", device or "/dev/video0"
    if sys.platform == "darwin":
        return "avfoundation", device or "0"
    if sys.platform.startswith("win"):
        return "dshow", device if device and device.startswith("video=") else \
            f"video={device or 'Integrated Camera'}"
    raise SourceError(f"no webcam support on {sys.platform}: stream a file instead")


class WebcamSource(Source):
    """A local camera through PyAV; ``width``/``height``/``fps`` are asked of the driver."""

    def __init__(self, device: str | None = None, width: int = 640, height: int = 480,
                 fps: float = 30.0, max_frames: int | None = None) -> None:
        import av

        super().__init__(False, max_frames)  # a camera paces itself
        fmt, self.device = webcam_input(device)
        options = {"video_size": f"{width}x{height}", "framerate": f"{fps:g}"}
        try:
            self._container = av.open(self.device, format=fmt, options=options)
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot open webcam {self.device} ({exc}): check the device "
                              "name and that no other program uses it") from None
        stream = self._container.streams.video[0]
        self.info = VideoInfo(stream.codec_context.width or width,
                               stream.codec_context.height or height,
                               float(stream.average_rate or fps))
        self.name = self.device

    def _read(self) -> Iterator[tuple[np.ndarray, float]]:
        first = None
        for frame in self._container.decode(video=0):
            now = time.monotonic()
            first = now if first is None else first
            yield frame.to_ndarray(format="rgb24"), now - first

    async def close(self) -> None:
        self._container.close()

