"""The asyncio pipeline (offline order, real-time drop-oldest accounting, errors), the
frame sources and the video-file sink."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from stream.core.config import PipelineConfig
from stream.core.frames import Frame
from stream.core.pipeline import Pipeline, Stage
from stream.core.receiver import OutputFrame
from stream.core.sinks import VideoFileSink
from stream.core.sources import (
    ImageFolderSource,
    SourceError,
    VideoFileSource,
    WebcamSource,
)
from stream.net.live import open_source


async def _items(n: int, period: float = 0.0):
    for i in range(n):
        if period:
            await asyncio.sleep(period)
        yield i


def test_offline_mode_processes_every_item_in_order():
    seen = []
    pipe = Pipeline([Stage("double", lambda x: 2 * x),
                     Stage("fan", lambda x: [x, x + 1]),
                     Stage("slow", lambda x: time.sleep(0.002) or seen.append(x))],
                    PipelineConfig(realtime=False, queue_size=1))
    asyncio.run(pipe.run(_items(30)))
    assert seen == [v for i in range(30) for v in (2 * i, 2 * i + 1)]
    stats = pipe.stats()
    assert stats["source_items"] == 30
    assert stats["stages"]["slow"]["items"] == 60 and stats["stages"]["slow"]["dropped"] == 0
    assert stats["stages"]["slow"]["ms_median"] >= 2.0


def test_realtime_mode_drops_the_oldest_and_counts_each_drop():
    done, dropped = [], []
    pipe = Pipeline([Stage("fast", lambda x: x),
                     Stage("slow", lambda x: time.sleep(0.03) or done.append(x))],
                    PipelineConfig(realtime=True, queue_size=2),
                    on_drop=lambda item, reason: dropped.append((item, reason)))
    asyncio.run(pipe.run(_items(40, period=0.005)))
    assert dropped, "a stage 6x slower than the source must drop frames"
    assert {r for _, r in dropped} == {"late:slow"}
    assert sorted(done + [i for i, _ in dropped]) == list(range(40))  # none unaccounted
    assert done == sorted(done) and done[-1] == 39  # the newest frames survive
    assert pipe.stats()["stages"]["slow"]["dropped"] == len(dropped)
    assert pipe.stats()["stages"]["slow"]["queue_depth_max"] <= 2


def test_realtime_mode_never_drops_protected_items():
    done, dropped = [], []
    pipe = Pipeline([Stage("slow", lambda x: time.sleep(0.02) or done.append(x),
                           droppable=lambda x: x % 5 != 0)],
                    PipelineConfig(realtime=True, queue_size=1),
                    on_drop=lambda item, reason: dropped.append(item))
    asyncio.run(pipe.run(_items(30, period=0.002)))
    assert all(i % 5 for i in dropped)
    assert {0, 5, 10, 15, 20, 25} <= set(done)


def test_stage_error_reaches_the_caller_and_stops_the_rest():
    def boom(x):
        if x == 3:
            raise ValueError("bad frame 3")
        return x

    async def coro_stage(x):
        await asyncio.sleep(0)
        return x

    pipe = Pipeline([Stage("boom", boom), Stage("async", coro_stage)],
                    PipelineConfig(realtime=False))
    with pytest.raises(ValueError, match="bad frame 3"):
        asyncio.run(pipe.run(_items(10)))
    with pytest.raises(ValueError, match="at least one stage"):
        Pipeline([])


def test_stop_ends_the_source_and_drains():
    done = []
    pipe = Pipeline([Stage("collect", done.append, threaded=False)],
                    PipelineConfig(realtime=False))

    async def main():
        async def source():
            for i in range(1000):
                if i == 5:
                    pipe.stop()
                yield i
                await asyncio.sleep(0)
        await pipe.run(source())

    asyncio.run(main())
    assert done == [0, 1, 2, 3, 4, 5]  # the item read when stop() came is not lost


def _collect(source, limit: int = 100) -> list[Frame]:
    async def main():
        return [f async for f in source.frames()][:limit]
    return asyncio.run(main())


def test_video_source_paced_at_its_frame_rate(samples):
    paced = VideoFileSource(samples / "asl-again.mkv", realtime=True, max_frames=10)
    assert (paced.info.width, paced.info.height) == (640, 480) and paced.info.fps == 30
    t0 = time.monotonic()
    frames = _collect(paced)
    elapsed = time.monotonic() - t0
    assert [f.index for f in frames] == list(range(10))
    assert frames[0].image.shape == (480, 640, 3) and frames[0].image.dtype == np.uint8
    assert elapsed >= 9 / 30 - 0.01
    assert abs(frames[9].pts - 9 / 30) < 1e-6
    assert all(b.captured >= a.captured for a, b in zip(frames, frames[1:], strict=False))


def test_video_source_loops_with_growing_pts(samples):
    src = VideoFileSource(samples / "carphone.mp4", realtime=False, max_frames=130, loop=True)
    frames = _collect(src, limit=200)
    assert len(frames) == 130  # the clip has 120 frames
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False))
    assert np.array_equal(frames[120].image, frames[0].image)


def test_image_folder_source(samples, tmp_path):
    src = ImageFolderSource(samples / "cronkite", fps=10, realtime=False, max_frames=4)
    frames = _collect(src)
    assert len(frames) == 4 and frames[0].image.shape == (256, 256, 3)
    assert frames[3].pts == pytest.approx(0.3)
    (tmp_path / "notes.txt").write_text("no images")
    with pytest.raises(SourceError, match="no .png"):
        ImageFolderSource(tmp_path)


def test_open_source_names_what_is_wrong(samples, tmp_path):
    assert isinstance(open_source(str(samples / "carphone.mp4")), VideoFileSource)
    assert isinstance(open_source(str(samples / "cronkite")), ImageFolderSource)
    with pytest.raises(SourceError, match="does not exist"):
        open_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(SourceError, match="browser:PORT"):
        open_source("browser:abc")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="bad.mp4"):
        open_source(str(bad))


def test_missing_webcam_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="webcam"):
        WebcamSource(str(tmp_path / "video9"))


def test_video_file_sink_writes_decodable_h264(tmp_path):
    from dynbg.video import probe, read_frames

    path = tmp_path / "out.mp4"
    sink = VideoFileSink(path, fps=30)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (121, 161, 3), dtype=np.uint8)  # odd sides are trimmed
    for i in range(6):
        sink.write(OutputFrame(np.roll(base, i, axis=1), i, i / 30, "key", 0.0))
    sink.close()
    sink.close()
    info = probe(path)
    assert (info.width, info.height) == (160, 120)
    frames = list(read_frames(path))
    assert len(frames) == 6
    with pytest.raises(OSError, match="does not exist"):
        VideoFileSink(tmp_path / "nope" / "x.mp4", fps=30)
