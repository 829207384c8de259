"""RIFE HDv3 flow network (IFNet): three coarse-to-fine IFBlocks, backward warping, strict loading.

Tensors are N x C x H x W float32; images in [0, 1]. Flow has 4 channels: the flow from the
intermediate frame to frame 0 (x, y) then to frame 1 (x, y), in pixels. The mask is a logit:
sigmoid(mask) is the weight of warped frame 0 in the blend.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

WIDTH = 90  # channels inside each IFBlock of the HDv3 release
STAGE_SCALES = (4.0, 2.0, 1.0)  # downscale factor of each stage before the user's scale knob
BLOCK_INPUTS = 7 + 4  # warped0, warped1, mask, and the current flow
TEACHER_PREFIX = "block_tea."  # training-only teacher block of the published state dict
ALLOWED_SCALES = (0.25, 0.5, 1.0, 2.0)  # values of the scale knob that keep every size integral


class WeightsError(ValueError):
    """A state dict does not fit this IFNet (message is one line naming the key or mismatch)."""


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv with bias followed by a per-channel PReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=True), nn.PReLU(cout))


def _head(c: int, cout: int) -> nn.Sequential:
    """Two 4x4 stride-2 transposed convs (c -> c/2 -> cout), PReLU between: upsamples by 4."""
    return nn.Sequential(nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.PReLU(c // 2),
                         nn.ConvTranspose2d(c // 2, cout, 4, 2, 1))


class IFBlock(nn.Module):
    """One flow-refinement block: downsample by 4, four residual pairs, flow and mask heads."""

    def __init__(self, cin: int = BLOCK_INPUTS, c: int = WIDTH) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv(cin, c // 2, 2), _conv(c // 2, c, 2))
        self.convblock0 = nn.Sequential(_conv(c, c), _conv(c, c))
        self.convblock1 = nn.Sequential(_conv(c, c), _conv(c, c))
        self.convblock2 = nn.Sequential(_conv(c, c), _conv(c, c))
        self.convblock3 = nn.Sequential(_conv(c, c), _conv(c, c))
        self.conv1 = _head(c, 4)
        self.conv2 = _head(c, 1)

    def forward(self, x: torch.Tensor, flow: torch.Tensor,
                scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        """x: N x 7 x H x W, flow: N x 4 x H x W at full size; runs at H/scale x W/scale.

        Returns the flow update (N x 4 x H x W, pixels) and the mask update (N x 1 x H x W).
        """
        if scale != 1:
            x = F.interpolate(x, scale_factor=1 / scale, mode="bilinear", align_corners=False)
            flow = F.interpolate(flow, scale_factor=1 / scale, mode="bilinear",
                                 align_corners=False) / scale
        x = self.conv0(torch.cat((x, flow), 1))
        for unit in (self.convblock0, self.convblock1, self.convblock2, self.convblock3):
            x = unit(x) + x
        flow, mask = self.conv1(x), self.conv2(x)
        if scale != 1:
            flow = F.interpolate(flow, scale_factor=scale, mode="bilinear", align_corners=False)
            flow = flow * scale
            mask = F.interpolate(mask, scale_factor=scale, mode="bilinear", align_corners=False)
        return flow, mask


def warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp img (N x C x H x W) by flow (N x 2 x H x W, pixels, x then y).

    Output pixel p samples img at p + flow(p), bilinearly, clamping at the border.
    """
    n, _, h, w = img.shape
    ys = torch.linspace(-1.0, 1.0, h, dtype=img.dtype, device=img.device)
    xs = torch.linspace(-1.0, 1.0, w, dtype=img.dtype, device=img.device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    norm = torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=img.dtype, device=img.device)
    grid = torch.stack((gx, gy), -1).unsqueeze(0) + (flow.permute(0, 2, 3, 1) / norm)
    return F.grid_sample(img, grid.expand(n, -1, -1, -1), mode="bilinear",
                         padding_mode="border", align_corners=True)


def _swap(flow: torch.Tensor) -> torch.Tensor:
    """Exchange the t->0 and t->1 halves of a 4-channel flow."""
    return torch.cat((flow[:, 2:4], flow[:, 0:2]), 1)


class IFNet(nn.Module):
    """HDv3 IFNet: estimates flow t->0, t->1 and a blend mask for the middle frame (t = 0.5)."""

    def __init__(self) -> None:
        super().__init__()
        self.block0 = IFBlock()
        self.block1 = IFBlock()
        self.block2 = IFBlock()

    @staticmethod
    def pad_multiple(scale: float = 1.0) -> int:
        """Frame sides must be a multiple of this (pixels) for the given scale knob."""
        check_scale(scale)
        return max(32, int(32 / scale))

    def flow(self, img0: torch.Tensor, img1: torch.Tensor,
             scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Flow (N x 4 x H x W) and mask logit (N x 1 x H x W) for the middle frame.

        img0, img1: N x 3 x H x W in [0, 1], H and W multiples of pad_multiple(scale).
        scale < 1 runs the flow at a coarser resolution (faster), > 1 at a finer one.
        """
        check_scale(scale)
        n, _, h, w = img0.shape
        flow = img0.new_zeros(n, 4, h, w)
        mask = img0.new_zeros(n, 1, h, w)
        warped0, warped1 = img0, img1
        for block, s in zip((self.block0, self.block1, self.block2), STAGE_SCALES, strict=True):
            s = s / scale
            f_a, m_a = block(torch.cat((warped0, warped1, mask), 1), flow, s)
            f_b, m_b = block(torch.cat((warped1, warped0, -mask), 1), _swap(flow), s)
            flow = flow + (f_a + _swap(f_b)) / 2
            mask = mask + (m_a - m_b) / 2
            warped0 = warp(img0, flow[:, 0:2])
            warped1 = warp(img1, flow[:, 2:4])
        return flow, mask

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """Middle frame N x 3 x H x W in [0, 1] (same size rules as ``flow``)."""
        flow, mask = self.flow(img0, img1, scale)
        return blend(img0, img1, flow, mask, 0.5)


def blend(img0: torch.Tensor, img1: torch.Tensor, flow: torch.Tensor, mask: torch.Tensor,
          t: float) -> torch.Tensor:
    """Frame at time t in (0, 1) from the middle-frame flow and mask (N x 3 x H x W, [0, 1]).

    t = 0.5 is the network's own output. For other t the flow is scaled linearly in time
    (t->0 by 2t, t->1 by 2(1-t)) and the mask logit is shifted by log((1-t)/t), so the
    nearer frame weighs more; this assumes locally linear motion.
    """
    if not 0.0 < t < 1.0:
        raise ValueError(f"t must lie strictly between 0 and 1, got {t}")
    if t != 0.5:
        flow = torch.cat((flow[:, 0:2] * (2 * t), flow[:, 2:4] * (2 * (1 - t))), 1)
        mask = mask + float(torch.log(torch.tensor((1 - t) / t)))
    weight = torch.sigmoid(mask)
    return weight * warp(img0, flow[:, 0:2]) + (1 - weight) * warp(img1, flow[:, 2:4])


def check_scale(scale: float) -> None:
    """Raise ValueError unless scale is one of ALLOWED_SCALES."""
    if scale not in ALLOWED_SCALES:
        raise ValueError(f"scale must be one of {ALLOWED_SCALES}, got {scale}")


def _strip_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the "module." prefix DataParallel training leaves on every key."""
    return {k.removeprefix("module."): v for k, v in state.items()}


def _version_mismatch(state: Mapping[str, torch.Tensor], model: IFNet) -> str | None:
    """One-line description of why ``state`` is another RIFE release, or None if it is HDv3-like."""
    own = model.state_dict()
    blocks = sorted({k.split(".")[0] for k in state if k.startswith("block")})
    if blocks and set(blocks) != {"block0", "block1", "block2"}:
        return f"it has blocks {blocks}, HDv3 has block0, block1, block2 (+ block_tea)"
    for key in ("block0.conv0.0.0.weight", "block0.convblock0.0.0.weight"):
        if key in state and tuple(state[key].shape) != tuple(own[key].shape):
            return (f"{key} has shape {tuple(state[key].shape)}, HDv3 expects "
                    f"{tuple(own[key].shape)} (block width {WIDTH}, {BLOCK_INPUTS} input channels)")
    if not any(k.startswith("block0.") for k in state):
        sample = ", ".join(sorted(state)[:3]) or "no keys"
        return f"it has no block0 weights (first keys: {sample})"
    return None


def load_state(model: IFNet, state: Mapping[str, torch.Tensor]) -> None:
    """Load an HDv3 state dict into ``model`` strictly; raise WeightsError naming what is wrong.

    The "module." prefix is accepted and the training-only teacher block is dropped; any other
    missing or unexpected key, or a tensor of the wrong shape, is an error.
    """
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor)
                                                 for v in state.values()):
        raise WeightsError("the weights file does not hold a state dict of tensors")
    state = {k: v for k, v in _strip_prefix(state).items() if not k.startswith(TEACHER_PREFIX)}
    reason = _version_mismatch(state, model)
    if reason:
        raise WeightsError(f"not a RIFE HDv3 IFNet state dict: {reason}")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing:
        raise WeightsError(f"missing key {missing[0]!r} in the RIFE state dict"
                           f" ({len(missing)} missing in all)")
    if unexpected:
        raise WeightsError(f"unexpected key {unexpected[0]!r} in the RIFE state dict"
                           f" ({len(unexpected)} unexpected in all)")
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise WeightsError(f"key {key!r} has shape {tuple(value.shape)}, "
                               f"expected {tuple(own[key].shape)}")
    model.load_state_dict(state, strict=True)


def load_ifnet(path: Path | str) -> IFNet:
    """IFNet in eval mode with the weights at ``path`` (a RIFE HDv3 flownet.pkl)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"RIFE weights not found at {path}: run `semstream models fetch`") \
            from None
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise WeightsError(f"cannot read RIFE weights {path}: {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    model = IFNet()
    load_state(model, state)
    return model.eval()
