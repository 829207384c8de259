"""Image quality metrics on uint8 frames: PSNR (whole frame or inside a mask) and SSIM.

Frames are H x W x C (or H x W) uint8 arrays; the peak value is 255.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from skimage.metrics import structural_similarity

PEAK = 255.0
SSIM_WINDOW = 11  # taps a side of the Gaussian SSIM window (sigma 1.5, truncated at 3.5 sigma)
SSIM_SIGMA = 1.5


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"frames differ in shape: {a.shape} vs {b.shape}")


def mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error between two frames, over all values or over mask>0 pixels.

    mask: H x W array (bool or numeric); every channel of a selected pixel counts.
    Returns NaN when the mask selects nothing.
    """
    _check_pair(a, b)
    d = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if mask is None:
        return float(d.mean())
    m = np.asarray(mask) > 0
    if m.shape != a.shape[:2]:
        raise ValueError(f"mask shape {m.shape} does not match frame {a.shape[:2]}")
    if not m.any():
        return math.nan
    return float(d[m].mean())


def psnr_from_mse(value: float, peak: float = PEAK) -> float:
    """PSNR in dB for a mean squared error; inf for a perfect match."""
    if math.isnan(value):
        return math.nan
    if value == 0:
        return math.inf
    return 10.0 * math.log10(peak * peak / value)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB between uint8 frames a and b, optionally only where mask>0."""
    return psnr_from_mse(mse(a, b, mask))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two uint8 frames (H x W [x C]), in [-1, 1]: the standard
    SSIM of Wang et al. (2004) as published work reports it, a Gaussian window of 11 x 11
    taps with sigma 1.5 (scikit-image ``gaussian_weights``, truncated at 3.5 sigma),
    population covariances, K1 = 0.01, K2 = 0.03, peak 255, averaged over channels.
    Frames smaller than 11 pixels a side are refused (ValueError)."""
    _check_pair(a, b)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW} x {SSIM_WINDOW} "
                         f"pixels, got {a.shape[:2]}")
    channel_axis = -1 if a.ndim == 3 else None
    return float(structural_similarity(a, b, data_range=PEAK, channel_axis=channel_axis,
                                       gaussian_weights=True, sigma=SSIM_SIGMA,
                                       use_sample_covariance=False))


@dataclass
class QualityLog:
    """Per-frame PSNR/SSIM rows and their aggregate.

    The aggregate PSNR is both the mean of per-frame PSNRs (as papers report) and the
    PSNR of the pooled MSE (robust to a perfect frame's infinite PSNR).
    """

    rows: list[dict] = field(default_factory=list)

    def add(self, reference: np.ndarray, decoded: np.ndarray, mask: np.ndarray | None = None,
            **extra) -> dict:
        """Score one frame; extra keys (index, mode, ...) are kept in its row."""
        row = {"mse": mse(reference, decoded), "psnr": psnr(reference, decoded),
               "ssim": ssim(reference, decoded), **extra}
        if mask is not None:
            row["psnr_mask"] = psnr(reference, decoded, mask)
        self.rows.append(row)
        return row

    def summary(self) -> dict:
        """Means over frames: psnr_mean (finite frames), psnr_pooled, ssim_mean, frames."""
        if not self.rows:
            return {"frames": 0}
        finite = [r["psnr"] for r in self.rows if math.isfinite(r["psnr"])]
        out = {
            "frames": len(self.rows),
            "psnr_mean": float(np.mean(finite)) if finite else math.inf,
            "psnr_pooled": psnr_from_mse(float(np.mean([r["mse"] for r in self.rows]))),
            "ssim_mean": float(np.mean([r["ssim"] for r in self.rows])),
        }
        masked = [r["psnr_mask"] for r in self.rows
                  if "psnr_mask" in r and math.isfinite(r["psnr_mask"])]
        if masked:
            out["psnr_mask_mean"] = float(np.mean(masked))
        return out
