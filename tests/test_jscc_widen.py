"""Function-preserving widening of a trained JSCC model into a wider preset."""

from __future__ import annotations

import pytest
import torch

from jscc.model import CONFIGS, AdaptiveJSCC, JSCCConfig, load_weights
from jscc.train import TrainConfig, Trainer
from jscc.widen import widen_model, widen_ratio


@pytest.fixture(scope="module")
def edge() -> AdaptiveJSCC:
    """The shipped edge model (trained weights, eval mode)."""
    from jscc.export import default_weights_path

    return load_weights(default_weights_path("edge"), expect="edge")[0]


def _run(model: AdaptiveJSCC, x: torch.Tensor, level) -> torch.Tensor:
    out = model(x, torch.tensor([-5.0, 3.0, 10.0, 20.0]), level=level,
                generator=torch.Generator().manual_seed(7))
    return out.x_hat, out.level


def test_the_widened_model_computes_what_the_trained_one_does(edge):
    wide = widen_model(edge, CONFIGS["wide"], noise=0.0).eval()
    x = torch.rand(4, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    for level in (None, 0, 2, 4):
        (a, la), (b, lb) = _run(edge, x, level), _run(wide, x, level)
        assert torch.equal(la, lb)
        assert (a - b).abs().max() < 1e-5
    # the noise that breaks the copies' symmetry changes the output only slightly
    noisy = widen_model(edge, CONFIGS["wide"], noise=0.01).eval()
    assert ((_run(noisy, x, 4)[0] - _run(edge, x, 4)[0]) ** 2).mean() < 1e-4
    assert sum(p.numel() for p in wide.parameters()) > 3 * sum(
        p.numel() for p in edge.parameters())


def test_widening_refuses_models_of_another_shape():
    edge = CONFIGS["edge"]
    assert widen_ratio(edge, CONFIGS["wide"]) == 2
    for other in (CONFIGS["x8"], CONFIGS["edge-gdn"], JSCCConfig("odd", (24, 48, 96)),
                  JSCCConfig("mixed", (32, 64, 64))):
        with pytest.raises(ValueError, match="cannot widen"):
            widen_ratio(edge, other)


def test_a_wide_run_starts_from_a_narrow_checkpoint(edge, tmp_path):
    src = tmp_path / "edge.pt"
    torch.save({"model_config": edge.cfg.to_dict(), "model": edge.state_dict()}, src)
    trainer = Trainer(TrainConfig(model="wide", init=str(src)), tmp_path / "run")
    assert "widened" in trainer.start_from(src)
    trainer.model.eval()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert ((_run(trainer.model, x, 4)[0] - _run(edge, x, 4)[0]) ** 2).mean() < 1e-4
    with pytest.raises(ValueError, match="cannot widen"):
        Trainer(TrainConfig(model="x8"), tmp_path / "x8").start_from(src)


def test_a_run_starts_from_shipped_weights(edge, tmp_path):
    """--init takes an exported weights file too (the shipped edge.pt, fp16)."""
    from jscc.export import default_weights_path

    trainer = Trainer(TrainConfig(model="wide"), tmp_path / "run")
    assert "widened" in trainer.start_from(default_weights_path("edge"))
    trainer.model.eval()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert ((_run(trainer.model, x, 4)[0] - _run(edge, x, 4)[0]) ** 2).mean() < 1e-4
    torch.save({"something": 1}, tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="neither a training checkpoint nor exported weights"):
        trainer.start_from(tmp_path / "junk.pt")
