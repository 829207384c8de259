import json
import math
import zipfile
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

import jscc
from jscc.channel import ChannelConfig
from jscc.digital.separation import SeparationConfig
from jscc.evaluate import EvalConfig, evaluate, fit_size, load_eval_images, subset_indices
from jscc.model import CONFIGS, AdaptiveJSCC
from stream.cli import main

SHIPPED_EDGE = Path(jscc.__file__).parent / "weights" / "edge.pt"


@pytest.fixture(scope="module")
def tiles(samples) -> list[np.ndarray]:
    """Six 32 x 32 crops and two 44 x 56 crops of real carphone.mp4 frames (RGB)."""
    frames = []
    with av.open(str(samples / "carphone.mp4")) as container:
        for i, f in enumerate(container.decode(video=0)):
            if i % 20 == 0:
                frames.append(f.to_ndarray(format="rgb24"))
            if len(frames) == 4:
                break
    out = [np.ascontiguousarray(f[y:y + 32, x:x + 32]) for f in frames[:3]
           for y, x in ((30, 60), (90, 120))]
    out += [np.ascontiguousarray(f[20:64, 40:96]) for f in frames[3:]] * 2
    return out


@pytest.fixture(scope="module")
def tiny_zip(tiles, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i, im in enumerate(tiles):
            ok, buf = cv2.imencode(".png", cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
            zf.writestr(f"tiny/{i:02d}.png", buf.tobytes())
    return path


def run_cli(*args: str) -> int:
    return main(["jscc", "eval", *args])


def test_baseline_alone_writes_the_report(tiny_zip, tmp_path, capsys):
    out = tmp_path / "r.json"
    code = run_cli("--data", str(tiny_zip), "--model", "none", "--baseline", "separation",
                   "--snr", "0,10,20", "--codecs", "webp,hevc", "--limit", "3",
                   "--json", str(out))
    assert code == 0
    report = json.loads(out.read_text())
    assert report["model"]["name"] == "none" and "results" not in report
    assert report["data"]["images"] == 3 and report["data"]["of"] == 8
    assert report["channel"]["kind"] == "awgn"
    base = report["baseline"]
    assert base["rule"] == "capacity" and "rho" in base["channel_uses"]
    assert [r["snr"] for r in base["results"]] == [0, 10, 20]
    for r in base["results"]:
        assert set(r["codecs"]) == {"webp", "hevc"}
        assert {"psnr", "ssim", "lost", "bits"} <= set(r["best"])
    # images 0, 2, 5: 32 x 32 at rho = 1/6: 512 uses, 512 * log2(1 + 10) bits at 10 dB
    assert base["results"][1]["budget_bits"] == math.floor(512 * math.log2(11))
    assert base["results"][2]["best"]["psnr"] > base["results"][1]["best"]["psnr"] > 20
    assert "SNR dB" in capsys.readouterr().out


def test_model_and_baseline_share_the_channel_uses(tiles):
    torch.manual_seed(0)
    model = AdaptiveJSCC(CONFIGS["edge"])
    small = tiles[:6]
    cfg = EvalConfig(snrs=(10.0,), level=4)
    report = evaluate(small, cfg, model, SeparationConfig(codecs=("webp",)))
    (r,) = report["results"]
    assert {"snr", "psnr", "ssim", "rate"} <= set(r)
    assert r["rate"] == pytest.approx(1 / 6) and r["channel_uses"] == 512
    assert r["levels"] == [0, 0, 0, 0, 6]
    (b,) = report["baseline"]["results"]
    assert b["budget_bits"] == math.floor(512 * math.log2(11))
    low = evaluate(small, EvalConfig(snrs=(10.0,), level=0), model)["results"][0]
    assert low["rate"] == pytest.approx(1 / 12) and "baseline" not in evaluate(
        small, EvalConfig(snrs=(10.0,), level=0), model)


def test_rayleigh_and_mixed_sizes(tiles):
    model = AdaptiveJSCC(CONFIGS["edge"])
    cfg = EvalConfig(snrs=(5.0,), level=2, channel=ChannelConfig("rayleigh"))
    r = evaluate(tiles, cfg, model)["results"][0]
    # level 2: 4 + 2 groups of latent symbols; 32x32 -> 8x8 latent, 44x56 -> 11x14
    assert r["channel_uses"] == pytest.approx((6 * 6 * 8 * 8 + 2 * 6 * 11 * 14) / 8)
    assert r["rate"] == pytest.approx((6 * 384 / 3072 + 2 * 924 / (3 * 44 * 56)) / 8)


@pytest.mark.skipif(not SHIPPED_EDGE.exists(), reason="shipped jscc/weights/edge.pt not exported")
def test_cli_with_the_shipped_model(tiny_zip, tmp_path):
    out = tmp_path / "m.json"
    assert run_cli("--data", str(tiny_zip), "--model", "edge", "--snr", "0,20",
                   "--baseline", "separation", "--codecs", "webp", "--json", str(out)) == 0
    report = json.loads(out.read_text())
    low, high = report["results"]
    assert 1 / 12 - 1e-6 <= low["rate"] <= 1 / 6 + 1e-6
    assert high["psnr"] > low["psnr"] > 15
    assert "JSCC model took" in report["baseline"]["channel_uses"]


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    assert run_cli("--data", str(tmp_path / "missing.zip"), "--model", "none",
                   "--baseline", "separation") == 2
    assert run_cli("--data", str(tmp_path), "--model", "none", "--baseline", "separation") == 2
    assert run_cli("--data", str(tmp_path), "--snr", "a,b", "--model", "none") == 2
    assert run_cli("--data", str(tmp_path), "--model", "nonexistent-model") == 2
    assert run_cli("--data", str(tmp_path), "--model", "none") == 2  # nothing to evaluate
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5 and all(line.startswith("semstream jscc: error:") for line in err)


def test_fit_size_keeps_orientation():
    land = np.zeros((239, 768, 3), np.uint8)
    port = np.zeros((768, 620, 3), np.uint8)
    assert fit_size(land, (768, 512)).shape == (512, 768, 3)
    assert fit_size(port, (768, 512)).shape == (768, 512, 3)
    img = np.arange(40 * 60 * 3, dtype=np.uint8).reshape(40, 60, 3)
    assert np.array_equal(fit_size(img, (60, 40)), img)


def test_subset_is_spread_and_reported(tiny_zip):
    assert subset_indices(10000, 1000)[:3].tolist() == [0, 10, 20]
    assert subset_indices(5, None).tolist() == [0, 1, 2, 3, 4]
    images, info = load_eval_images(tiny_zip, limit=3, size=(40, 30))
    assert len(images) == 3 and all(im.shape == (30, 40, 3) for im in images)
    assert info["of"] == 8 and "3 evenly spaced of 8" in info["subset"] and "fit" in info
