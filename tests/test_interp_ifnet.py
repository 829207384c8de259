"""IFNet: strict loading of the published HDv3 weights, warping, padding of odd sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.ifnet import IFBlock, IFNet, WeightsError, load_ifnet, load_state, warp
from tests.conftest import require_model


@pytest.fixture(scope="module")
def published_state() -> dict:
    path = require_model("rife-hdv3")
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.weights
def test_published_weights_load_strictly(published_state):
    model = load_ifnet(require_model("rife-hdv3"))
    assert not model.training
    key = "block2.convblock3.1.0.weight"
    assert torch.equal(model.state_dict()[key], published_state["module." + key])
    assert any(k.startswith("module.block_tea.") for k in published_state)  # dropped knowingly


@pytest.mark.weights
def test_missing_key_is_named(published_state):
    state = dict(published_state)
    del state["module.block1.convblock2.1.0.bias"]
    with pytest.raises(WeightsError, match=r"missing key 'block1\.convblock2\.1\.0\.bias'"):
        load_state(IFNet(), state)


@pytest.mark.weights
def test_unexpected_key_is_named(published_state):
    state = dict(published_state)
    state["module.block0.extra.weight"] = torch.zeros(3)
    with pytest.raises(WeightsError, match=r"unexpected key 'block0\.extra\.weight'"):
        load_state(IFNet(), state)


def test_other_rife_version_is_refused_by_name():
    # A RIFE 4.x-style flownet: more blocks, another width and input count.
    other = torch.nn.Module()
    for i in range(4):
        other.add_module(f"block{i}", IFBlock(cin=8 + 4 * (i > 0), c=64))
    state = {"module." + k: v for k, v in other.state_dict().items()}
    with pytest.raises(WeightsError, match="not a RIFE HDv3 IFNet state dict: it has blocks"):
        load_state(IFNet(), state)
    # Same three blocks but another width.
    narrow = torch.nn.Module()
    for i in range(3):
        narrow.add_module(f"block{i}", IFBlock(c=64))
    with pytest.raises(WeightsError, match=r"block0\.conv0\.0\.0\.weight has shape"):
        load_state(IFNet(), narrow.state_dict())


def test_corrupt_weights_file_is_one_line_error(tmp_path):
    bad = tmp_path / "flownet.pkl"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="cannot read RIFE weights"):
        load_ifnet(bad)
    with pytest.raises(FileNotFoundError, match="semstream models fetch"):
        load_ifnet(tmp_path / "absent.pkl")


def test_warp_shifts_by_the_flow():
    img = torch.arange(5 * 7, dtype=torch.float32).reshape(1, 1, 5, 7)
    flow = torch.zeros(1, 2, 5, 7)
    flow[:, 0] = 1.0  # sample one pixel to the right
    out = warp(img, flow)
    assert torch.allclose(out[..., :-1], img[..., 1:], atol=1e-4)
    assert torch.allclose(out[..., -1], img[..., -1], atol=1e-4)  # border clamps


@pytest.mark.weights
@pytest.mark.parametrize("size", [(37, 53), (64, 96), (101, 33)])
def test_odd_sizes_are_padded_and_cropped_back(size, samples):
    from interp.rife import Rife
    from interp.video import read_clip

    rife = Rife(require_model("rife-hdv3"))
    frame = read_clip(samples / "asl-again.mkv", max_frames=1)[0][0]
    f0 = np.ascontiguousarray(frame[100:100 + size[0], 200:200 + size[1]])
    out = rife.interpolate(f0, f0.copy())
    assert out.shape == f0.shape and out.dtype == np.uint8
    # Identical frames: the interpolated frame is the frame itself (no shift from padding).
    assert np.abs(out.astype(int) - f0).mean() < 0.5


@pytest.mark.weights
def test_bad_frames_get_clear_errors():
    from interp.rife import Rife

    rife = Rife(require_model("rife-hdv3"))
    f = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="H x W x 3"):
        rife.interpolate(f[..., 0], f[..., 0])
    with pytest.raises(ValueError, match="differ in size"):
        rife.interpolate(f, np.zeros((32, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="scale must be one of"):
        rife.interpolate(f, f, scale=0.3)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        rife.interpolate(f, f, t=1.0)
