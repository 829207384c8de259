"""Interpolators that need no learned weights: DIS optical flow, linear blend, repeat.

All take and return H x W x 3 uint8 RGB frames; t in (0, 1) is the instant between frame0
(t = 0) and frame1 (t = 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from interp.frames import check_pair, check_times, to_uint8

DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
               "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def repeat(frame0: np.ndarray, frame1: np.ndarray, times: Sequence[float]) -> list[np.ndarray]:
    """Hold frame0 for every instant (what a receiver shows when it does not interpolate)."""
    check_pair(frame0, frame1)
    check_times(list(times))
    return [frame0.copy() for _ in times]


def linear_blend(frame0: np.ndarray, frame1: np.ndarray,
                 times: Sequence[float]) -> list[np.ndarray]:
    """(1 - t) * frame0 + t * frame1 for each t, rounded to uint8."""
    check_pair(frame0, frame1)
    check_times(list(times))
    a, b = frame0.astype(np.float32), frame1.astype(np.float32)
    return [to_uint8((1.0 - t) * a + t * b) for t in times]


@dataclass(frozen=True)
class DisConfig:
    """DIS flow options.

    preset: OpenCV DIS preset (ultrafast, fast, medium).
    occlusion_px: forward-backward flow disagreement (pixels) at which a pixel counts as
    fully occluded; the visibility weight falls linearly from 1 at 0 px to a floor at this value.
    floor: smallest visibility weight, so a pixel occluded in both frames still gets a blend.
    """

    preset: str = "fast"
    occlusion_px: float = 1.0
    floor: float = 0.05


def _remap(img: np.ndarray, grid_x: np.ndarray, grid_y: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: out(p) = img(p + flow(p)), bilinear, border replicated."""
    return cv2.remap(img, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


class DisInterpolator:
    """OpenCV DIS optical flow both ways, warp to t, blend with occlusion-aware weights.

    Flow to the intermediate instant uses the quadratic approximation of Super SloMo
    (Jiang et al. 2018): F_t0 = -(1-t) t F01 + t^2 F10, F_t1 = (1-t)^2 F01 - t (1-t) F10.
    A pixel's visibility in frame i comes from forward-backward consistency of its flow.
    """

    def __init__(self, config: DisConfig = DisConfig()) -> None:
        if config.preset not in DIS_PRESETS:
            raise ValueError(f"unknown DIS preset {config.preset!r}: choose one of "
                             f"{', '.join(DIS_PRESETS)}")
        self.config = config
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[config.preset])

    def _visibility(self, flow_ab: np.ndarray, flow_ba: np.ndarray, gx: np.ndarray,
                    gy: np.ndarray) -> np.ndarray:
        """H x W weight in [floor, 1]: how well flow a->b is undone by flow b->a at its target."""
        back = _remap(flow_ba, gx, gy, flow_ab)
        err = np.linalg.norm(flow_ab + back, axis=-1)
        c = self.config
        return np.clip(1.0 - err / c.occlusion_px, c.floor, 1.0).astype(np.float32)

    def __call__(self, frame0: np.ndarray, frame1: np.ndarray,
                 times: Sequence[float]) -> list[np.ndarray]:
        """Frames at each t (H x W x 3 uint8 RGB)."""
        check_pair(frame0, frame1)
        check_times(list(times))
        g0 = cv2.cvtColor(frame0, cv2.COLOR_RGB2GRAY)
        g1 = cv2.cvtColor(frame1, cv2.COLOR_RGB2GRAY)
        f01 = self._dis.calc(g0, g1, None)
        f10 = self._dis.calc(g1, g0, None)
        h, w = g0.shape
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        vis0 = self._visibility(f01, f10, gx, gy)
        vis1 = self._visibility(f10, f01, gx, gy)
        a, b = frame0.astype(np.float32), frame1.astype(np.float32)
        out = []
        for t in times:
            ft0 = -(1 - t) * t * f01 + t * t * f10
            ft1 = (1 - t) ** 2 * f01 - t * (1 - t) * f10
            w0 = (1 - t) * _remap(vis0, gx, gy, ft0)
            w1 = t * _remap(vis1, gx, gy, ft1)
            num = w0[..., None] * _remap(a, gx, gy, ft0) + w1[..., None] * _remap(b, gx, gy, ft1)
            out.append(to_uint8(num / (w0 + w1)[..., None]))
        return out
