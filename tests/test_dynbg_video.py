"""dynbg.video: PyAV reader on the real samples, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from dynbg.video import VideoError, probe, read_frames


def test_reads_rgb_frames_with_index_and_pts(samples):
    frames = list(read_frames(samples / "carphone.mp4", start=2, max_frames=3, step=2))
    assert [f.index for f in frames] == [2, 4, 6]
    assert all(f.image.shape == (144, 176, 3) and f.image.dtype == np.uint8 for f in frames)
    assert frames[1].pts == pytest.approx(4 / 29.97, abs=1e-3)
    assert probe(samples / "bikes.mp4").frames == 250


def test_missing_and_corrupt_files_raise_one_line(tmp_path):
    with pytest.raises(VideoError, match="does not exist"):
        list(read_frames(tmp_path / "nope.mp4"))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoError) as err:
        list(read_frames(bad))
    assert "\n" not in str(err.value)
