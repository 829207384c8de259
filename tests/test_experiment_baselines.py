"""H.264 separation baseline (budget fit, MCS cliff, loss rule) and the base-station
experiment (DP >= greedy >= everyone direct)."""

from __future__ import annotations

import numpy as np
import pytest

from jscc.digital.budget import bit_budget
from jscc.digital.h264 import FrameLink, H264Config, h264_baseline, shown_frames
from jscc.metrics import psnr
from stream.experiments.basestation import BaseStationConfig, run_basestation


@pytest.fixture(scope="module")
def frames(samples):
    from dynbg.video import read_frames

    return [f.image for f in read_frames(samples / "carphone.mp4", max_frames=8)]


@pytest.mark.parametrize("rule", ["capacity", "mcs"])
def test_h264_fits_its_budget(frames, rule):
    uses = 8 * 4000
    r = h264_baseline(frames, 30.0, uses, 5.0, H264Config(rule=rule))
    assert r["fit"] and r["frames_lost"] == 0
    assert r["budget_bits"] == pytest.approx(bit_budget(uses, 5.0, rule), abs=8)
    assert 0.5 * r["budget_bits"] < r["bits"] <= r["budget_bits"]
    assert r["psnr_mean"] > 25


def test_h264_mcs_cliff_below_threshold(frames):
    uses = 8 * 40000
    # the MCS is picked 1 dB below the SNR (the one margin rule): the cliff is at -5.7 dB
    above = h264_baseline(frames, 30.0, uses, -5.5, H264Config(rule="mcs"))
    below = h264_baseline(frames, 30.0, uses, -6.0, H264Config(rule="mcs"))
    capacity = h264_baseline(frames, 30.0, uses, -6.0, H264Config(rule="capacity"))
    assert above["fit"] and above["frames_lost"] == 0
    assert not below["fit"] and below["frames_lost"] == 8 and below["budget_bits"] == 0
    grey = np.full_like(frames[0], 128)
    assert below["psnr_mean"] == pytest.approx(np.mean([psnr(f, grey) for f in frames]))
    assert capacity["fit"] and capacity["psnr_mean"] > below["psnr_mean"] + 5


def test_h264_budget_too_small_loses_everything(frames):
    r = h264_baseline(frames, 30.0, 50, 20.0, H264Config())
    assert not r["fit"] and r["frames_lost"] == 8 and r["bits"] == 0


def test_outdated_channel_knowledge_loses_frames_and_asks_for_keyframes(frames):
    """With a FrameLink the sender codes each frame for the SNR it expects; a frame whose
    realised SNR falls below that scheme's threshold is lost, later frames freeze until the
    keyframe the receiver asks for (2 frames later) or the periodic one."""
    n, uses = len(frames), 8 * 6000
    expected = np.full(n, 10.0)
    realised = expected.copy()
    realised[2] = 3.0  # a fade the sender did not see coming
    r = h264_baseline(frames, 30.0, uses, 10.0, H264Config(rule="mcs"),
                      FrameLink(expected, realised))
    assert r["fit"] and r["frames_lost"] == 1
    assert [x["frozen"] for x in r["rows"]] == [False, False, True, True, False, False, False,
                                                False]
    assert r["frames_frozen"] == 2 and r["psnr_p5"] < r["psnr_mean"]
    steady = h264_baseline(frames, 30.0, uses, 10.0, H264Config(rule="mcs"),
                           FrameLink(expected, expected))
    assert steady["frames_frozen"] == 0 and steady["psnr_mean"] > r["psnr_mean"]
    no_feedback = h264_baseline(frames, 30.0, uses, 10.0,
                                H264Config(rule="mcs", feedback_delay=None),
                                FrameLink(expected, realised))
    assert no_feedback["frames_frozen"] == n - 2  # frozen to the end: gop is 30 frames


def test_loss_rule_freezes_until_keyframe():
    decoded = [np.full((2, 2, 3), v, np.uint8) for v in (10, 20, 30, 40, 50)]
    lost = np.array([False, True, False, False, False])
    keys = np.array([True, False, False, True, False])
    shown = shown_frames(decoded, lost, keys, (2, 2, 3))
    assert [int(s[0, 0, 0]) for s in shown] == [10, 10, 10, 40, 50]
    first_lost = shown_frames(decoded, np.array([True, False, False, False, False]), keys,
                              (2, 2, 3))
    assert [int(s[0, 0, 0]) for s in first_lost] == [128, 128, 128, 40, 50]


def test_basestation_dp_ge_greedy_ge_direct():
    r = run_basestation(BaseStationConfig(users=6, trials=20, p_max=(0.1, 0.5, 2, 10)))
    dp, greedy, direct = (np.array(r[n]["mean"]) for n in ("dp", "greedy", "direct"))
    assert np.all(dp >= greedy - 1e-9) and np.all(greedy >= direct - 1e-9)
    assert r["dp_ge_greedy"] and r["greedy_ge_direct"]
    assert dp[0] > direct[0]  # key information helps when power is scarce
    assert np.all(np.diff(dp) >= -1e-9)  # more power never hurts the optimum
    with pytest.raises(ValueError, match="key_fraction"):
        BaseStationConfig(key_fraction=1.0)
