"""dynbg.keyinfo: boxes, resolution check, latent-grid mask, exact round trip, feathering."""

from __future__ import annotations

import numpy as np

from dynbg.keyinfo import CropConfig, bounding_box, extract, paste_back, pool_mask
from dynbg.segmenters import make_segmenter
from dynbg.video import read_frames


def test_box_margin_alignment_and_empty():
    m = np.zeros((100, 120), bool)
    m[40:50, 30:45] = True
    x1, y1, x2, y2 = bounding_box(m, CropConfig(margin=0.0, min_margin=5, align=4))
    assert x1 <= 25 and y1 <= 35 and x2 >= 50 and y2 >= 55
    assert (x2 - x1) % 4 == 0 and (y2 - y1) % 4 == 0
    assert bounding_box(np.zeros((10, 10), bool)) is None
    assert extract(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), bool)) is None
    p = pool_mask(np.eye(6, dtype=bool), 4)
    assert p.shape == (2, 2) and p.tolist() == [[True, False], [False, True]]


def test_round_trip_exact_inside_mask_and_scaled_crop(samples):
    frame = next(read_frames(samples / "asl-again.mkv", start=30, max_frames=1)).image
    with make_segmenter("selfie") as seg:
        mask = seg.binary(frame)
    info = extract(frame, mask)
    r = info.record
    assert info.crop.shape == (r.y2 - r.y1, r.x2 - r.x1, 3) and r.scale == 1.0
    assert info.grid_mask.shape == (info.crop.shape[0] // 4, info.crop.shape[1] // 4)
    background = np.zeros_like(frame)
    out = paste_back(background, info.crop, r)
    assert np.array_equal(out[mask], frame[mask])
    out_m = paste_back(background, info.crop, r, mask=info.mask)
    assert np.array_equal(out_m[mask], frame[mask])
    assert out_m[~mask].mean() < out[~mask].mean()  # the mask narrows what is pasted
    # Feathered seam: alpha ramps, so the box edge is a blend, not a copy.
    edge = out[r.y1 + 1, (r.x1 + r.x2) // 2].astype(int)
    assert (edge <= frame[r.y1 + 1, (r.x1 + r.x2) // 2]).all() and r.y1 > 0
    small = extract(frame, mask, CropConfig(max_pixels=20_000))
    sw, sh = small.record.sent_width, small.record.sent_height
    assert sw * sh <= 20_000 and small.crop.shape[:2] == (sh, sw) and small.record.scale < 1
    back = paste_back(background, small.crop, small.record)
    inner = mask.copy()
    assert np.abs(back[inner].astype(int) - frame[inner]).mean() < 12
