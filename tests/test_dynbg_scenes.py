"""dynbg.scenes on real clips: bikes.mp4 cuts (labelled by eye) and static ASL clips."""

from __future__ import annotations

from dynbg.scenes import SceneConfig, SceneSegmenter, Segment, segment_frames
from dynbg.video import read_frames

# First frame of each new shot in samples/bikes.mp4, labelled by viewing frames around the
# candidates (all five are hard cuts; frames 64-75 and 85-105 are a passing taxi and car).
BIKES_CUTS = (30, 76, 137, 187, 242)


def test_bikes_cuts_no_miss_at_most_one_false(samples):
    seg = SceneSegmenter(SceneConfig())
    found = [f.index for f in read_frames(samples / "bikes.mp4") if seg.update(f.image).cut]
    assert set(BIKES_CUTS) <= set(found)
    assert len(set(found) - set(BIKES_CUTS)) <= 1


def test_static_clip_is_one_segment(samples):
    frames = (f.image for f in read_frames(samples / "asl-yes.mkv"))
    assert segment_frames(frames) == [Segment(0, 64)]
