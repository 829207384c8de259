"""Offline: split a video into scenes, build one background per scene, save them as a library.

The output folder is written under a temporary name beside it and renamed at the end, so
a failure leaves no partial library behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynbg.background import BackgroundConfig, build_background
from dynbg.library import BackgroundLibrary, LibraryConfig, write_image
from dynbg.scenes import SceneConfig, SceneSegmenter, Segment
from dynbg.segmenters import make_segmenter
from dynbg.video import VideoError, read_frames


@dataclass(frozen=True)
class SceneBackground:
    """One scene's background: frames start..end (inclusive), image path, unseen fraction,
    and how many evenly spaced frames went into it."""

    start: int
    end: int
    background: Path
    unseen_fraction: float
    frames_used: int

    def to_json(self) -> dict:
        """JSON-ready dict of the fields (path as a string)."""
        return {"start": self.start, "end": self.end, "background": str(self.background),
                "unseen_fraction": round(self.unseen_fraction, 6), "frames_used": self.frames_used}


def video_segments(video: str | Path, config: SceneConfig | None = None) -> list[Segment]:
    """Scenes of ``video`` (frame ranges, inclusive) by streaming scene segmentation."""
    seg = SceneSegmenter(config or SceneConfig())
    segments: list[Segment] = []
    start = last = 0
    for frame in read_frames(video):
        if seg.update(frame.image).cut:
            segments.append(Segment(start, frame.index - 1))
            start = frame.index
        last = frame.index
    segments.append(Segment(start, last))
    return segments


def sample_indices(segment: Segment, samples: int) -> np.ndarray:
    """Up to ``samples`` evenly spaced frame indices of ``segment`` (sorted, unique)."""
    n = segment.end - segment.start + 1
    return np.unique(np.linspace(segment.start, segment.end, min(samples, n)).round().astype(int))


def build_video_library(video: str | Path, out: str | Path,
                        segmenter: str = "selfie+pose-hull",
                        samples: int = 32, scene: SceneConfig | None = None,
                        background: BackgroundConfig | None = None,
                        library: LibraryConfig | None = None, replace: bool = False,
                        device: str = "cpu") -> list[SceneBackground]:
    """Write ``out``/bg-NNN.png per scene plus the library index; return the scenes.

    samples: frames per scene (evenly spaced) that go into its background. ``out`` must not
    exist (or be an empty folder) unless ``replace``. Raises VideoError, SegmenterError,
    LibraryError or OSError with a one-line message. Configs default to their defaults.
    device: where a rembg segmenter runs (a ``--device`` value).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not replace:
        raise OSError(f"{out} exists and is not empty: choose another folder or use --force")
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    segments = video_segments(video, scene)
    wanted = {int(i): k for k, s in enumerate(segments) for i in sample_indices(s, samples)}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the library is an ordinary folder
    try:
        picked: list[list[np.ndarray]] = [[] for _ in segments]
        masks: list[list[np.ndarray]] = [[] for _ in segments]
        with make_segmenter(segmenter, device) as seg:
            for frame in read_frames(video):
                k = wanted.get(frame.index)
                if k is not None:
                    picked[k].append(frame.image)
                    masks[k].append(seg.mask(frame.image))
        if any(not p for p in picked):
            raise VideoError(f"{video} gave fewer frames on the second read: is it complete?")
        scenes = []
        for k, s in enumerate(segments):
            bg = build_background(picked[k], masks[k], background or BackgroundConfig())
            name = f"bg-{k:03d}.png"
            write_image(tmp / name, bg.image)
            scenes.append(SceneBackground(s.start, s.end, out / name, bg.unseen_fraction,
                                          len(picked[k])))
            picked[k] = masks[k] = []
        BackgroundLibrary.build(tmp, library or LibraryConfig()).save()
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}-old-", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return scenes
