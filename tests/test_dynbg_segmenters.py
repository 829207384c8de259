"""dynbg.segmenters on real frames: person found, empty scene empty, 1/3/4 channels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dynbg.image import FrameError
from dynbg.segmenters import SegmenterError, make_segmenter
from dynbg.video import read_frames
from tests.conftest import require_model


@pytest.fixture(scope="module")
def asl_frame(samples):
    return next(read_frames(samples / "asl-again.mkv", start=20, max_frames=1)).image


@pytest.fixture(scope="module")
def empty_frame(samples):  # frame 20 of one-by-one-person.mp4: nobody in view (checked by eye)
    return next(read_frames(samples / "one-by-one-person.mp4", start=20, max_frames=1)).image


@pytest.mark.parametrize("name", ["selfie", "pose-hull", "rembg:u2netp"])
def test_person_found_and_empty_scene_is_empty(name, asl_frame, empty_frame):
    if name.startswith("rembg"):
        require_model("u2netp")
    with make_segmenter(name) as seg:
        m = seg.mask(asl_frame)
        assert m.shape == asl_frame.shape[:2] and m.dtype == np.float32
        assert 0.0 <= m.min() and m.max() <= 1.0
        fg = seg.binary(asl_frame)
        # The signer sits in the middle of the frame: the centre column is foreground.
        assert 0.05 < fg.mean() < 0.7 and fg[200:400, 300:340].mean() > 0.8
        assert fg[:, :40].mean() < 0.1  # the left edge is office background
    with make_segmenter(name) as seg:  # fresh: pose tracking must not carry over
        # selfie finds nobody; pose (1.4 %) and u2netp (3.2 %, a salient-object model) take
        # the table for a figure: a known limit of those models, kept small here.
        limit = 0.01 if name == "selfie" else 0.05
        assert seg.binary(empty_frame).mean() < limit


def test_gray_rgba_and_bad_frames(samples, asl_frame):
    gray = cv2.imread(str(samples / "cronkite" / "01.png"), cv2.IMREAD_GRAYSCALE)
    rgba = np.dstack([asl_frame, np.full(asl_frame.shape[:2], 255, np.uint8)])
    with make_segmenter("selfie") as seg:
        g = seg.binary(gray)
        assert g.shape == gray.shape and 0.1 < g.mean() < 0.8  # the talking head
        assert np.array_equal(seg.binary(rgba), seg.binary(asl_frame))
        assert seg.mask(gray[:, :, None]).shape == gray.shape
        with pytest.raises(FrameError, match="too small"):
            seg.mask(np.zeros((1, 1, 3), np.uint8))
        with pytest.raises(FrameError, match="shape"):
            seg.mask(np.zeros((8, 8, 2), np.uint8))
    with pytest.raises(SegmenterError, match="unknown segmenter"):
        make_segmenter("grabcut")


def test_union_is_the_pixelwise_maximum(asl_frame):
    with make_segmenter("selfie") as a, make_segmenter("pose-hull") as b, \
            make_segmenter("selfie+pose-hull") as both:
        assert both.name == "selfie+pose-hull"
        assert np.allclose(both.mask(asl_frame), np.maximum(a.mask(asl_frame), b.mask(asl_frame)))
    with pytest.raises(SegmenterError, match="unknown segmenter 'nope'"):
        make_segmenter("selfie+nope")
