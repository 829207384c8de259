"""Motion segmenter, auto segmenter, exposure gain, seamless paste-back and the seam score."""

from __future__ import annotations

import numpy as np
import pytest

from dynbg.blend import BlendConfig, blend_paste
from dynbg.exposure import (
    GAIN_BYTES,
    Gain,
    apply_gain,
    decode_gain,
    encode_gain,
    estimate_gain,
)
from dynbg.keyinfo import CropRecord, paste_back
from dynbg.motion import MotionConfig, MotionSegmenter
from dynbg.seam import seam_sums
from dynbg.segmenters import SegmenterError, make_segmenter
from dynbg.video import read_frames


def _scene(n: int = 12, size: tuple[int, int] = (120, 160)) -> list[np.ndarray]:
    """A textured static scene with a textured square (30 px) moving right by 6 px a frame."""
    rng = np.random.default_rng(0)
    base = (rng.random((*size, 3)) * 60 + 80).astype(np.uint8)
    square = (rng.random((30, 30, 3)) * 255).astype(np.uint8)
    square[:, :, 0] = 250
    frames = []
    for i in range(n):
        f = base.copy()
        f[40:70, 10 + 6 * i:40 + 6 * i] = square
        frames.append(f)
    return frames


def test_motion_finds_the_moving_square_and_nothing_else() -> None:
    seg = MotionSegmenter(MotionConfig(width=160, grow=0, min_area=0.0))
    frames = _scene()
    first = seg.mask(frames[0])
    assert not first.any()  # one frame: nothing has moved yet
    for f in frames[1:]:
        m = seg.binary(f)
    i = len(frames) - 1
    square = np.zeros(m.shape, bool)
    square[40:70, 10 + 6 * i:40 + 6 * i] = True
    assert m[square].mean() > 0.8
    assert m[~square].mean() < 0.02


def test_motion_drops_shadows() -> None:
    """A region darkened to 70 % (a shadow: same colour, less light) is not foreground."""
    static = [_scene(n=1)[0] for _ in range(30)]
    shadowed = static[-1].copy()
    shadowed[20:100, 60:120] = (shadowed[20:100, 60:120] * 0.7).astype(np.uint8)
    seg = MotionSegmenter(MotionConfig(width=160, grow=0))
    for f in static:
        seg.mask(f)
    assert seg.binary(shadowed)[20:100, 60:120].mean() < 0.05
    no_shadow = MotionSegmenter(MotionConfig(width=160, grow=0, shadows=False))
    for f in static:
        no_shadow.mask(f)
    assert no_shadow.binary(shadowed)[20:100, 60:120].mean() > 0.5


def test_motion_reset_and_names() -> None:
    seg = make_segmenter("motion")
    frames = _scene()
    for f in frames[:5]:
        seg.mask(f)
    seg.reset()
    assert not seg.mask(frames[5]).any()  # a fresh model
    assert make_segmenter("motion:knn").config.method == "knn"
    with pytest.raises(SegmenterError, match="motion:knn"):
        make_segmenter("motion:fast")


def test_selfie_plus_motion_and_auto_on_a_real_clip(samples) -> None:
    frames = [f.image for f in read_frames(samples / "asl-again.mkv", max_frames=8)]
    for name in ("selfie+motion", "auto"):
        with make_segmenter(name) as seg:
            masks = [seg.binary(f) for f in frames]
        assert 0.02 < masks[-1].mean() < 0.6, name  # the signer, not the whole frame


def test_gain_round_trip_and_estimate() -> None:
    g = Gain(np.array([1.2, 0.9, 1.05], np.float32), np.array([-5.0, 3.0, 0.0], np.float32))
    raw = encode_gain(g)
    assert len(raw) == GAIN_BYTES
    back = decode_gain(raw)
    assert np.allclose(back.gain, g.gain, rtol=0.006) and np.allclose(back.offset, g.offset,
                                                                      atol=0.25)
    assert encode_gain(Gain.identity()) == b""
    frames = _scene(n=1)
    bg = frames[0]
    drifted = apply_gain(bg, g)
    drifted[40:70, 100:150] = 0  # something the mask missed: the robust fit ignores it
    est = estimate_gain(bg, drifted, np.ones(bg.shape[:2], bool), stride=1)
    assert np.allclose(est.gain, g.gain, atol=0.02) and np.allclose(est.offset, g.offset, atol=2)
    with pytest.raises(ValueError, match="6 bytes"):
        decode_gain(b"\x00")


def test_blend_paste_hides_the_box_where_feathering_does_not() -> None:
    """A crop 20 levels brighter than the background (a codec's level error): the
    blended composite shows no step at the box border, the feathered one does."""
    rng = np.random.default_rng(1)
    frame = (rng.random((120, 160, 3)) * 20 + 100).astype(np.uint8)
    frame[50:70, 70:90] = 230  # the object
    record = CropRecord(40, 30, 120, 90, 160, 120, 80, 60)
    crop = np.clip(frame[30:90, 40:120].astype(int) + 20, 0, 255).astype(np.uint8)
    blended = blend_paste(frame, crop, record, config=BlendConfig(detect=12.0))
    feathered = paste_back(frame, crop, record, feather=0)
    step_blend = seam_sums(blended, record.box)
    step_feather = seam_sums(feathered, record.box)
    reference = seam_sums(frame, record.box)
    assert step_feather[0] / step_feather[1] > 2 * reference[0] / reference[1]
    assert step_blend[0] / step_blend[1] < 1.2 * reference[0] / reference[1]
    assert np.abs(blended[55:65, 75:85].astype(int) - 230).max() <= 3  # object level kept


def test_seam_sums_counts_inner_edges_only() -> None:
    image = np.zeros((10, 10, 3), np.uint8)
    image[2:8, 2:8] = 10
    total, count = seam_sums(image, (2, 2, 8, 8))
    assert count == 4 * 6 * 3 and total == 10 * count
    assert seam_sums(image, (0, 0, 10, 10)) == (0.0, 0)  # the frame border is no seam
