"""Seam score: how strongly a pasted crop's box shows in a rebuilt frame.

Across each edge of the crop's box that is not a frame border, take the pairs of
neighbouring pixels that straddle it (one just outside, one just inside) and average the
absolute difference over pairs and colour channels (levels). The same measure on a line
``inset`` pixels inside the box is the frame's own texture there; the same pairs in a frame
rebuilt without a box (direct mode, or the original) say what the edge should look like.
A visible rectangle shows as a border score above both.
"""

from __future__ import annotations

import numpy as np


def seam_sums(image: np.ndarray, box: tuple[int, int, int, int], inset: int = 0
              ) -> tuple[float, int]:
    """(sum of absolute differences, number of values) over the pixel pairs straddling the
    inner edges of ``box`` (x1, y1, x2, y2; exclusive ends), moved ``inset`` px into the box.

    image: H x W x C uint8. Edges on the frame border, and edges whose moved line would
    leave the box, contribute nothing. Pool sums over frames, then divide.
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in box)
    img = image.astype(np.int16)
    total, count = 0.0, 0
    pairs = []
    if x1 > 0 and x1 + inset < x2:
        pairs.append((img[y1:y2, x1 - 1 + inset], img[y1:y2, x1 + inset]))
    if x2 < w and x2 - 1 - inset >= x1 + 1:
        pairs.append((img[y1:y2, x2 - inset], img[y1:y2, x2 - 1 - inset]))
    if y1 > 0 and y1 + inset < y2:
        pairs.append((img[y1 - 1 + inset, x1:x2], img[y1 + inset, x1:x2]))
    if y2 < h and y2 - 1 - inset >= y1 + 1:
        pairs.append((img[y2 - inset, x1:x2], img[y2 - 1 - inset, x1:x2]))
    for a, b in pairs:
        d = np.abs(a - b)
        total += float(d.sum())
        count += int(d.size)
    return total, count
