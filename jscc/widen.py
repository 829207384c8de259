"""Function-preserving widening of a trained JSCC model (the Net2WiderNet idea).

A model whose stage widths are an integer multiple ``r`` of a trained model's (same depth,
latent, groups and norm, e.g. ``wide`` = 2 x ``edge``) starts out computing what the
trained one computes: wide channel ``j`` of a layer copies narrow channel ``j mod c``
(weights, bias, BatchNorm parameters and statistics), and every weight that reads a widened
input divides by ``r``, because each narrow channel now arrives ``r`` times. Inputs that are
not channels (the SNR column of the modulation and policy MLPs, RGB, the latent) keep their
weights. Since the copies would receive identical gradients, a little noise
(``noise`` x the tensor's standard deviation) on the copied weights lets them drift apart;
with ``noise=0`` the wide model reproduces the narrow one's outputs exactly.

Axes: Conv2d and Linear weights are (out, in, ...), ConvTranspose2d weights (in, out, ...);
biases and BatchNorm vectors are (out,).
"""

from __future__ import annotations

import torch
from torch import nn

from jscc.model import AdaptiveJSCC, JSCCConfig


def widen_ratio(narrow: JSCCConfig, wide: JSCCConfig) -> int:
    """The common width ratio r of ``wide`` over ``narrow``; ValueError when the two
    differ in anything but widths, or the widths are not one integer multiple."""
    same = {k: v for k, v in narrow.to_dict().items() if k not in ("name", "widths")}
    other = {k: v for k, v in wide.to_dict().items() if k not in ("name", "widths")}
    ratios = {b / a for a, b in zip(narrow.widths, wide.widths, strict=False)}
    if same != other or len(narrow.widths) != len(wide.widths) or narrow.norm != "bn" \
            or len(ratios) != 1 or not float(next(iter(ratios))).is_integer() \
            or next(iter(ratios)) < 1:
        raise ValueError(f"cannot widen {narrow.name!r} {narrow.widths} into {wide.name!r} "
                         f"{wide.widths}: needs the same depth, latent, groups and BatchNorm "
                         "with every width one integer multiple larger")
    return int(next(iter(ratios)))


def _index(small: int, big: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(source index, divisor) per position of a widened axis of ``big`` entries.

    big = r x small: position j copies j mod small, read r times. big = r x (small - 1) + 1:
    the same for the first small - 1 entries (channel means) and the last one (the SNR)
    kept as it is. big == small: unchanged.
    """
    if big == small:
        return torch.arange(big), torch.ones(big)
    if big % small == 0:
        return torch.arange(big) % small, torch.full((big,), float(big // small))
    if small > 1 and (big - 1) % (small - 1) == 0:
        r = (big - 1) // (small - 1)
        idx = torch.cat([torch.arange(big - 1) % (small - 1), torch.tensor([small - 1])])
        div = torch.cat([torch.full((big - 1,), float(r)), torch.ones(1)])
        return idx, div
    raise ValueError(f"an axis of {small} entries cannot grow to {big}")


def _widen(t: torch.Tensor, shape: torch.Size, out_axis: int | None, in_axis: int | None,
           noise: float, generator: torch.Generator) -> torch.Tensor:
    """``t`` copied to ``shape`` along its out axis, copied and divided along its in axis."""
    w = t
    if out_axis is not None:
        idx, _ = _index(t.shape[out_axis], shape[out_axis])
        w = w.index_select(out_axis, idx)
    if in_axis is not None:
        idx, div = _index(t.shape[in_axis], shape[in_axis])
        view = [1] * w.dim()
        view[in_axis] = -1
        w = w.index_select(in_axis, idx) / div.view(view)
    if noise and w.shape != t.shape and w.dim() > 1:
        w = w + noise * float(t.std()) * torch.randn(w.shape, generator=generator)
    return w


def _axes(module: nn.Module, name: str) -> tuple[int | None, int | None]:
    """(out axis, in axis) of parameter or buffer ``name`` of ``module``."""
    if name == "num_batches_tracked":
        return None, None
    if name != "weight" or isinstance(module, nn.modules.batchnorm._BatchNorm):
        return 0, None  # biases, BatchNorm vectors
    if isinstance(module, nn.ConvTranspose2d):
        return 1, 0
    if isinstance(module, nn.Conv2d | nn.Linear):
        return 0, 1
    raise ValueError(f"no widening rule for {type(module).__name__}.{name}")


@torch.no_grad()
def widen_model(narrow: AdaptiveJSCC, wide_cfg: JSCCConfig, noise: float = 0.01,
                seed: int = 0) -> AdaptiveJSCC:
    """A new ``AdaptiveJSCC(wide_cfg)`` whose every tensor is widened from ``narrow``
    (see the module docstring); ``noise`` breaks the symmetry of the copies."""
    widen_ratio(narrow.cfg, wide_cfg)
    wide = AdaptiveJSCC(wide_cfg)
    generator = torch.Generator().manual_seed(seed)
    small = dict(narrow.named_modules())
    state = {}
    for mod_name, module in wide.named_modules():
        tensors = {**dict(module.named_parameters(recurse=False)),
                   **dict(module.named_buffers(recurse=False))}
        for name, target in tensors.items():
            source = getattr(small[mod_name], name)
            out_axis, in_axis = _axes(module, name)
            key = f"{mod_name}.{name}" if mod_name else name
            state[key] = (source.clone() if out_axis is None and in_axis is None else
                          _widen(source, target.shape, out_axis, in_axis, noise, generator))
    wide.load_state_dict(state)
    return wide
