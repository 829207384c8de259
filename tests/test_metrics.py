import math

import numpy as np
import pytest

from jscc import metrics


def test_psnr_known_value():
    a = np.zeros((10, 10, 3), np.uint8)
    b = np.full((10, 10, 3), 10, np.uint8)  # MSE 100 -> 10 log10(255^2/100)
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))
    assert metrics.psnr(a, a) == math.inf


def test_psnr_inside_mask_ignores_outside():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[4:] = 255  # error only in the bottom half
    mask = np.zeros((8, 8), bool)
    mask[:4] = True
    assert metrics.psnr(a, b, mask) == math.inf
    assert metrics.psnr(a, b, ~mask) == pytest.approx(0.0)
    assert math.isnan(metrics.psnr(a, b, np.zeros((8, 8))))
    with pytest.raises(ValueError, match="mask shape"):
        metrics.psnr(a, b, np.ones((4, 4)))


def test_ssim_identical_and_noisy(samples):
    import cv2

    img = cv2.imread(str(samples / "cronkite" / "01.png"), cv2.IMREAD_GRAYSCALE)
    assert metrics.ssim(img, img) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noisy = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    assert 0.1 < metrics.ssim(img, noisy) < 0.9
    rgb = np.stack([img] * 3, -1)
    assert metrics.ssim(rgb, rgb) == pytest.approx(1.0)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.psnr(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))


def test_quality_log_aggregates():
    log = metrics.QualityLog()
    a = np.zeros((16, 16, 3), np.uint8)
    log.add(a, a, index=0)
    log.add(a, np.full_like(a, 10), mask=np.ones((16, 16)), index=1)
    s = log.summary()
    assert s["frames"] == 2
    assert s["psnr_mean"] == pytest.approx(10 * math.log10(255**2 / 100))  # inf frame excluded
    assert s["psnr_pooled"] == pytest.approx(10 * math.log10(255**2 / 50))
    assert log.rows[0]["index"] == 0 and "psnr_mask" in log.rows[1]
    assert metrics.QualityLog().summary() == {"frames": 0}


def _ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of Wang et al. (2004) written out: Gaussian 11 x 11 window, sigma 1.5, K1 0.01,
    K2 0.03, means over the valid (unpadded) region, one grey channel."""
    import cv2

    x, y = a.astype(np.float64), b.astype(np.float64)

    def blur(v):
        return cv2.GaussianBlur(v, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def test_ssim_is_the_standard_gaussian_11x11_sigma_1_5(samples):
    """The uniform 7 x 7 window (scikit-image's default) differs from the published SSIM
    by ~0.01-0.03 on a noisy frame; the standard one matches a written-out reference."""
    import cv2

    img = cv2.imread(str(samples / "cronkite" / "01.png"), cv2.IMREAD_GRAYSCALE)
    rng = np.random.default_rng(1)
    noisy = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    assert metrics.ssim(img, noisy) == pytest.approx(_ssim_reference(img, noisy), abs=2e-3)
    with pytest.raises(ValueError, match="at least 11"):
        metrics.ssim(img[:10, :10], noisy[:10, :10])
