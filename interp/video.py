"""Tiny frame I/O for the interp command: a video file (PyAV) or a folder of images in,
an H.264 file out. Frames are H x W x 3 uint8 RGB."""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class VideoInputError(ValueError):
    """An input clip or image folder cannot be read (one line)."""


def _read_images(folder: Path, max_frames: int | None) -> list[np.ndarray]:
    import cv2

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise VideoInputError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    frames = []
    for p in files[:max_frames]:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise VideoInputError(f"cannot decode image {p}: is it a valid image file?")
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if any(f.shape != frames[0].shape for f in frames):
        raise VideoInputError(f"images in {folder} differ in size: all must match")
    return frames


def _read_video(path: Path, max_frames: int | None) -> tuple[list[np.ndarray], float]:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoInputError(f"{path} has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 30.0
            frames = []
            for frame in container.decode(stream):
                if max_frames is not None and len(frames) >= max_frames:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
    except av.error.FFmpegError as exc:
        raise VideoInputError(f"cannot decode {path}: {exc}") from None
    if not frames:
        raise VideoInputError(f"{path} holds no decodable video frames")
    return frames, fps


def read_clip(path: Path | str, max_frames: int | None = None,
              folder_fps: float = 30.0) -> tuple[list[np.ndarray], float]:
    """Frames (H x W x 3 uint8 RGB) and frame rate (frames/s) of a video file or image folder.

    Images in a folder are taken in name order at ``folder_fps``; grayscale becomes RGB.
    """
    path = Path(path)
    if max_frames is not None and max_frames < 1:
        raise VideoInputError(f"max_frames must be at least 1, got {max_frames}")
    if not path.exists():
        raise VideoInputError(f"input {path} does not exist")
    if path.is_dir():
        return _read_images(path, max_frames), folder_fps
    return _read_video(path, max_frames)


def write_video(path: Path | str, frames: list[np.ndarray], fps: float) -> None:
    """Encode H x W x 3 uint8 RGB frames to an H.264 file (yuv444p when a side is odd)."""
    import av

    if not frames:
        raise ValueError("no frames to write")
    h, w = frames[0].shape[:2]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
