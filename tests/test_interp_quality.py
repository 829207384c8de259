"""Interpolation quality on real ASL frame triples: RIFE > DIS > blend > repeat, and the
foreground-only path stays close to whole-frame RIFE."""

from __future__ import annotations

import numpy as np
import pytest

from interp.classical import DisInterpolator, linear_blend, repeat
from interp.foreground import ForegroundConfig, box_from_mask, interpolate_foreground, region
from interp.video import read_clip
from jscc.metrics import psnr
from tests.conftest import require_model

CENTRES = (11, 31, 51)  # frames k predicted from k-1 and k+1 (hands moving in each)


@pytest.fixture(scope="module")
def asl(samples) -> list[np.ndarray]:
    frames, _ = read_clip(samples / "asl-again.mkv", max_frames=max(CENTRES) + 2)
    return frames


def _mean_psnr(asl, fn) -> float:
    return float(np.mean([psnr(asl[k], fn(asl[k - 1], asl[k + 1], (0.5,))[0]) for k in CENTRES]))


@pytest.fixture(scope="module")
def rife_call():
    from interp.rife import Rife

    rife = Rife(require_model("rife-hdv3"))
    return lambda a, b, ts: rife.interpolate_batch([a], [b], ts)[0]


def test_dis_beats_blend_beats_repeat(asl):
    dis = _mean_psnr(asl, DisInterpolator())
    blend = _mean_psnr(asl, linear_blend)
    rep = _mean_psnr(asl, repeat)
    assert dis > blend + 0.5 > rep + 0.5


@pytest.mark.weights
def test_rife_beats_dis_and_blend(asl, rife_call):
    rife = _mean_psnr(asl, rife_call)
    dis = _mean_psnr(asl, DisInterpolator())
    blend = _mean_psnr(asl, linear_blend)
    assert rife > dis
    assert rife >= blend + 1.5


@pytest.mark.weights
def test_foreground_only_is_close_to_whole_frame(asl, rife_call):
    k = CENTRES[0]
    a, b = asl[k - 1], asl[k + 1]
    whole = rife_call(a, b, (0.5,))[0]
    box = (150, 40, 500, 480)  # the signer, as a key-information crop would give it
    fg = interpolate_foreground(rife_call, a, b, box, box, (0.5,))[0]
    assert abs(psnr(asl[k], fg) - psnr(asl[k], whole)) < 0.5
    # Far from the signer the output is the blend of the two frames.
    blend = linear_blend(a, b, (0.5,))[0]
    assert np.array_equal(fg[:, :100], blend[:, :100])


def test_foreground_paste_outside_region_and_none_box():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    white = lambda f0, f1, ts: [np.full_like(f0, 255) for _ in ts]  # noqa: E731
    cfg = ForegroundConfig(margin=0, align=1, feather=0, motion_threshold=None)
    out = interpolate_foreground(white, a, b, (10, 20, 30, 40), None, (0.5,), config=cfg)[0]
    assert (out[20:40, 10:30] == 255).all()
    assert np.array_equal(out[:20], linear_blend(a, b, (0.5,))[0][:20])
    background = np.zeros_like(a)
    out = interpolate_foreground(white, a, b, None, None, (0.5,), background=background)[0]
    assert not out.any()
    assert region((10, 20, 30, 40), 60, 80) == (0, 0, 64, 60)  # margin, 32-aligned, clipped
    assert region((40, 40, 50, 50), 200, 200) == (13, 13, 77, 77)
    assert box_from_mask(np.zeros((4, 4))) is None
    with pytest.raises(ValueError, match="outside"):
        interpolate_foreground(white, a, b, (70, 0, 90, 10), None, (0.5,))


def test_several_instants_move_from_frame0_to_frame1():
    a = np.zeros((40, 40, 3), np.uint8)
    b = np.full((40, 40, 3), 90, np.uint8)
    means = [f.mean() for f in linear_blend(a, b, (1 / 3, 2 / 3))]
    assert means == pytest.approx([30, 60], abs=0.6)
    dis = DisInterpolator()(a, b, (0.25, 0.75))
    assert dis[0].mean() < dis[1].mean()
