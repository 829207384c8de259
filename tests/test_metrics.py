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
