"""Frame sinks: a video file (PyAV, libx264); the browser viewer's sink is
``stream.net.viewer.ViewerSink``.

A sink takes ``stream.core.receiver.OutputFrame`` objects (RGB uint8) in order with
``write`` and is flushed by ``close``.
"""

from __future__ import annotations

import fractions
from pathlib import Path

import numpy as np

from stream.core.receiver import OutputFrame


class VideoFileSink:
    """H.264 video file (yuv420p, CRF ``crf``) at ``fps``; frame pts from their source
    index, so frames missing from the output leave gaps in time rather than speeding up.
    The size is taken from the first frame (odd sides are cropped by one pixel)."""

    def __init__(self, path: str | Path, fps: float, crf: int = 18) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise OSError(f"cannot write {self.path}: folder {self.path.parent} does not exist")
        self.fps, self.crf = fps, crf
        self.frames = 0
        self._container = None
        self._stream = None
        self._last_pts = -1

    def _open(self, width: int, height: int) -> None:
        import av

        try:
            self._container = av.open(str(self.path), mode="w")
        except (av.error.FFmpegError, OSError) as exc:
            raise OSError(f"cannot write video {self.path}: {exc}") from None
        rate = fractions.Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.time_base = 1 / rate
        self._stream.options = {"crf": str(self.crf), "preset": "veryfast"}

    def write(self, frame: OutputFrame) -> None:
        """Encode one frame."""
        import av

        image = frame.image
        h, w = image.shape[0] & ~1, image.shape[1] & ~1
        if self._container is None:
            self._open(w, h)
        elif (w, h) != (self._stream.width, self._stream.height):
            raise ValueError(f"frame {frame.index} is {w}x{h}, the video is "
                             f"{self._stream.width}x{self._stream.height}")
        video = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="rgb24")
        video.pts = max(frame.index, self._last_pts + 1)
        self._last_pts = video.pts
        for packet in self._stream.encode(video):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and close the file (idempotent)."""
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None

