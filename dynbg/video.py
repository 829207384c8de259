"""Read video files with PyAV as RGB uint8 frames.

OpenCV's reader is not used: it has crashed on some codecs here. Errors (missing,
corrupt or unsupported file, no video stream) are raised as VideoError with one line
naming the file and what to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class VideoError(ValueError):
    """A video file cannot be opened or decoded (message is one line)."""


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame.

    image: H x W x 3 uint8, RGB. index: 0-based position in decode order.
    pts: presentation time in seconds (index / fps when the stream has no timestamps).
    """

    image: np.ndarray
    index: int
    pts: float


@dataclass(frozen=True)
class VideoInfo:
    """Stream facts: frame size in pixels, frames per second, frame count (0 if unknown)."""

    width: int
    height: int
    fps: float
    frames: int = 0


def _open(path: str | Path):
    import av

    p = Path(path)
    if not p.is_file():
        raise VideoError(f"video {p} does not exist: give the path of a video file")
    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise VideoError(f"cannot open video {p} ({exc}): is it a video file?") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{p} has no video stream: give a file with video")
    return container


def probe(path: str | Path) -> VideoInfo:
    """Size, frame rate and frame count of the first video stream of ``path``."""
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or 0
        return VideoInfo(stream.codec_context.width, stream.codec_context.height,
                         float(rate), int(stream.frames or 0))


def read_frames(path: str | Path, start: int = 0, max_frames: int | None = None,
                step: int = 1) -> Iterator[VideoFrame]:
    """Yield frames ``start, start+step, ...`` of ``path`` (at most ``max_frames`` of them).

    Raises VideoError for a missing, corrupt or unsupported file, or when not a single
    frame decodes; a file that breaks after some frames ends the iteration with VideoError.
    """
    import av

    if step < 1 or start < 0 or (max_frames is not None and max_frames < 0):
        raise ValueError(f"bad frame range start={start} step={step} max_frames={max_frames}")
    container = _open(path)
    yielded = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 30)
        tb = float(stream.time_base) if stream.time_base else None
        index = -1
        try:
            for frame in container.decode(stream):
                if max_frames is not None and yielded >= max_frames:
                    break
                index += 1
                if index < start or (index - start) % step:
                    continue
                pts = frame.pts * tb if frame.pts is not None and tb else index / rate
                yield VideoFrame(frame.to_ndarray(format="rgb24"), index, float(pts))
                yielded += 1
        except av.error.FFmpegError as exc:
            raise VideoError(f"decoding {path} failed at frame {index + 1} ({exc})") from None
    finally:
        container.close()
    if yielded == 0 and index < 0 and (max_frames is None or max_frames > 0):
        raise VideoError(f"no frame could be decoded from {path}: is the file complete?")
