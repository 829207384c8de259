"""dynbg.background: median of visible samples, holes, AND mask, online builder; one real span."""

from __future__ import annotations

import numpy as np
import pytest

from dynbg.background import (
    BackgroundConfig,
    OnlineBackground,
    build_background,
    masked_median,
)
from dynbg.image import FrameError
from dynbg.segmenters import make_segmenter
from dynbg.video import read_frames
from jscc.metrics import psnr


def test_masked_median_matches_numpy():
    rng = np.random.default_rng(1)
    s = rng.integers(240, 256, (7, 5, 6, 3), dtype=np.uint8)
    v = rng.random((7, 5, 6)) < 0.6
    med, counts = masked_median(s, v)
    for y in range(5):
        for x in range(6):
            if counts[y, x]:
                want = np.floor(np.median(s[v[:, y, x], y, x].astype(float), axis=0) + 0.5)
                assert np.array_equal(med[y, x], want)


def test_occluder_removed_hole_marked_and_and_mask():
    rng = np.random.default_rng(2)
    bg = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    frames, masks = [], []
    for x in range(0, 40, 4):  # a black box moving right, never over columns 46..49
        f, m = bg.copy(), np.zeros((40, 50), bool)
        f[10:30, x:x + 6] = 0
        m[10:30, x:x + 6] = True
        frames.append(f)
        masks.append(m)
    cfg = BackgroundConfig(dilate=0, exposure=False)
    b = build_background(frames, masks, cfg)
    assert np.array_equal(b.image, bg) and b.unseen_fraction == 0
    assert not b.always_visible[10:30, 0:42].all() and b.always_visible[:, 46:].all()
    still = build_background(frames[:1], masks[:1], cfg)
    assert still.hole[10:30, 0:6].all() and still.unseen_fraction == pytest.approx(120 / 2000)
    online = OnlineBackground(BackgroundConfig(dilate=0, exposure=False, samples=3, every=1))
    online.update(frames[0], masks[0])
    assert online.unseen_fraction == pytest.approx(120 / 2000)
    for f, m in zip(frames[1:], masks[1:], strict=True):
        online.update(f, m)
    assert online.unseen_fraction == 0 and np.array_equal(online.background().image, bg)
    with pytest.raises(FrameError):
        online.update(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10)))
    with pytest.raises(ValueError, match="no frame"):
        OnlineBackground().background()


def test_real_span_background_close_to_empty_scene(samples):
    """one-by-one-person.mp4: frames 0-59 show nobody (by eye); 64-190 a woman walks in and
    stands by the table. Build from 64-190 only; compare with the median of 0-59 where she was."""
    video = samples / "one-by-one-person.mp4"
    empty = np.median(np.stack([f.image for f in read_frames(video, max_frames=15, step=4)]),
                      axis=0).astype(np.uint8)
    span = [f.image for f in read_frames(video, start=64, max_frames=32, step=4)]
    with make_segmenter("selfie") as seg:
        masks = [seg.mask(f) for f in span]
    person = np.zeros(empty.shape[:2], bool)
    for f in span:
        person |= np.abs(f.astype(int) - empty).max(axis=2) > 40
    b = build_background(span, masks)
    naive = np.median(np.stack(span), axis=0).astype(np.uint8)
    assert psnr(b.image, empty, person) > psnr(naive, empty, person) + 2
    assert psnr(b.image, empty, person) > 27


def test_changed_mask_finds_objects_not_noise_or_specks():
    from dynbg.background import changed_mask

    rng = np.random.default_rng(3)
    bg = rng.integers(60, 200, (120, 160, 3), dtype=np.uint8)
    frame = np.clip(bg.astype(int) + rng.integers(-8, 9, bg.shape), 0, 255).astype(np.uint8)
    frame[30:70, 40:80] = 250      # an object the segmenter missed: 1600 px
    frame[100:103, 150:153] = 0    # a speck: 9 px, under min_area
    changed = changed_mask(frame, bg, threshold=25, min_area=0.001)
    assert changed[35:65, 45:75].all()
    assert not changed[100:103, 150:153].any()
    assert changed.sum() < 1.2 * 1600
    with pytest.raises(ValueError, match="differ in size"):
        changed_mask(frame, bg[:-1])
