"""Building blocks of the adaptive-rate JSCC model (Yang & Kim, ICASSP 2022).

All blocks take and return float tensors laid out (B, C, H, W); SNR values are
(B,) tensors in dB.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The modulation MLPs see the SNR in units of 10 dB, which keeps their input on
# the same scale as the per-channel feature means.
SNR_UNIT_DB = 10.0


def conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Conv (padding kernel//2, no bias) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def up_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """Transposed conv 3x3 stride 2 (doubles H and W) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 3, 2, padding=1, output_padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 conv + BN layers with an identity skip: relu(x + f(x)); keeps (B, C, H, W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class SNRModulation(nn.Module):
    """SNR-adaptive feature modulation: out = x * sigmoid(g([mean(x), snr])) + h([mean(x), snr]).

    x: (B, C, H, W); snr_db: (B,). The per-channel spatial means and the SNR feed two
    small MLPs, one giving a multiplicative factor in (0, 1) and one an additive term.
    """

    def __init__(self, channels: int):
        super().__init__()
        hidden = max(16, channels // 2)

        def mlp() -> nn.Sequential:
            return nn.Sequential(
                nn.Linear(channels + 1, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
            )

        self.factor = mlp()
        self.shift = mlp()

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        ctx = torch.cat([x.mean(dim=(2, 3)), snr_db[:, None] / SNR_UNIT_DB], dim=1)
        scale = torch.sigmoid(self.factor(ctx))[:, :, None, None]
        return x * scale + self.shift(ctx)[:, :, None, None]


class ModulatedResidualStack(nn.Module):
    """Residual blocks, each followed by an SNR modulation module; keeps (B, C, H, W)."""

    def __init__(self, channels: int, blocks: int = 2):
        super().__init__()
        self.res = nn.ModuleList(ResidualBlock(channels) for _ in range(blocks))
        self.mod = nn.ModuleList(SNRModulation(channels) for _ in range(blocks))

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        for res, mod in zip(self.res, self.mod, strict=True):
            x = mod(res(x), snr_db)
        return x


class PolicyNetwork(nn.Module):
    """Rate policy: (spatial mean of source features ++ SNR) -> logits over rate levels.

    feats: (B, C, H, W); snr_db: (B,). Returns logits (B, levels).
    """

    def __init__(self, channels: int, levels: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(channels + 1, hidden), nn.ReLU(inplace=True), nn.BatchNorm1d(hidden),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.BatchNorm1d(hidden),
            nn.Linear(hidden, levels),
        )

    def forward(self, feats: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        ctx = torch.cat([feats.mean(dim=(2, 3)), snr_db[:, None] / SNR_UNIT_DB], dim=1)
        return self.net(ctx)


def thermometer(one_hot: torch.Tensor) -> torch.Tensor:
    """Selectable-group mask from a level one-hot.

    one_hot: (B, L) over levels 0..L-1 (may carry straight-through gradients).
    Returns (B, L-1): entry j is 1 when level > j, i.e. level k turns on the first k groups.
    """
    # reverse cumulative sum: entry j sums one_hot[j+1:]
    tail = one_hot.flip(1).cumsum(1).flip(1)
    return tail[:, 1:]


def _fold(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> None:
    """Fold eval-mode BatchNorm statistics into the preceding convolution in place."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    out_axis = 1 if isinstance(conv, nn.ConvTranspose2d) else 0
    shape = [1] * conv.weight.dim()
    shape[out_axis] = -1
    conv.weight.data = conv.weight.data * scale.detach().view(shape)
    bias = conv.bias.data if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale.detach() + bn.bias.detach())


@torch.no_grad()
def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every Conv/ConvTranspose + BatchNorm2d pair inside Sequentials (inference only).

    The BatchNorm layers become Identity; the result computes what the eval-mode
    module computed. Returns the same module.
    """
    for seq in module.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if isinstance(conv, nn.Conv2d | nn.ConvTranspose2d) and isinstance(bn, nn.BatchNorm2d):
                _fold(conv, bn)
                seq[i + 1] = nn.Identity()
    return module
