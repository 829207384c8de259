"""dynbg.library on real frames: shots of bikes.mp4 as a library; bad folders."""

from __future__ import annotations

import numpy as np
import pytest

from dynbg.library import BackgroundLibrary, LibraryError, write_image
from dynbg.video import read_frames

SHOT_FRAMES = (10, 50, 120, 160, 220)  # one frame inside each of five shots of bikes.mp4
QUERY_FRAMES = (20, 40, 110, 170, 230)  # other frames of the same shots


@pytest.fixture(scope="module")
def bikes(samples):
    wanted = set(SHOT_FRAMES) | set(QUERY_FRAMES)
    return {f.index: f.image for f in read_frames(samples / "bikes.mp4") if f.index in wanted}


def test_build_save_load_match(tmp_path, bikes):
    for k, i in enumerate(SHOT_FRAMES):
        write_image(tmp_path / f"shot{k}.png", bikes[i])
    lib = BackgroundLibrary.build(tmp_path)
    lib.save()
    loaded = BackgroundLibrary.load(tmp_path)
    assert loaded.names == lib.names and all(
        np.array_equal(a, b) for a, b in zip(loaded.descriptors, lib.descriptors, strict=True))
    for k, i in enumerate(QUERY_FRAMES):
        r = loaded.match(bikes[i])
        assert r.path == tmp_path / f"shot{k}.png", (i, r)
        assert r.matches > r.runner_up_matches
    noise = np.random.default_rng(0).integers(0, 256, (272, 640, 3), dtype=np.uint8)
    assert loaded.match(noise).path is None  # N_k < N_min
    exclude = np.ones((272, 640), bool)  # everything masked out: nothing to match
    assert loaded.match(bikes[QUERY_FRAMES[0]], exclude).matches == 0
    (tmp_path / "extra.png").write_bytes((tmp_path / "shot0.png").read_bytes())
    with pytest.raises(LibraryError, match="does not list"):
        BackgroundLibrary.load(tmp_path)


def test_bad_libraries(tmp_path, bikes):
    with pytest.raises(LibraryError, match="no background images"):
        BackgroundLibrary.build(tmp_path)
    write_image(tmp_path / "a.png", bikes[SHOT_FRAMES[0]])
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(LibraryError, match="broken.jpg"):
        BackgroundLibrary.build(tmp_path)
    with pytest.raises(LibraryError, match="does not exist"):
        BackgroundLibrary.build(tmp_path / "missing")
