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


NORMS = ("bn", "gdn")


class GDN(nn.Module):
    """Generalized divisive normalization (Balle et al. 2016) and its inverse.

    y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)  (inverse: times the square root).
    x: (B, C, H, W). beta and gamma are kept positive by squaring their stored square
    roots, with a small floor (``1e-6``) on beta so the denominator never vanishes.
    """

    def __init__(self, channels: int, inverse: bool = False, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.beta_root = nn.Parameter(torch.ones(channels))
        self.gamma_root = nn.Parameter(torch.sqrt(gamma_init * torch.eye(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = self.beta_root**2 + 1e-6
        gamma = self.gamma_root**2
        norm = F.conv2d(x * x, gamma[:, :, None, None], beta)
        norm = torch.sqrt(norm)
        return x * norm if self.inverse else x / norm


def _norm_act(channels: int, norm: str, inverse: bool) -> list[nn.Module]:
    """Normalisation + non-linearity after a conv: BN + ReLU, or (I)GDN."""
    if norm == "bn":
        return [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
    if norm == "gdn":
        return [GDN(channels, inverse=inverse)]
    raise ValueError(f"unknown norm {norm!r}: choose one of {', '.join(NORMS)}")


def conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1,
                 norm: str = "bn") -> nn.Sequential:
    """Conv (padding kernel//2) + BatchNorm + ReLU, or + GDN when ``norm='gdn'``.

    The BN form has no conv bias (BN supplies it); the GDN form keeps one.
    """
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=norm != "bn"),
        *_norm_act(c_out, norm, inverse=False),
    )


def up_bn_relu(c_in: int, c_out: int, norm: str = "bn") -> nn.Sequential:
    """Transposed conv 3x3 stride 2 (doubles H and W) + BatchNorm + ReLU, or + IGDN."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 3, 2, padding=1, output_padding=1, bias=norm != "bn"),
        *_norm_act(c_out, norm, inverse=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 convs with an identity skip; keeps (B, C, H, W).

    norm 'bn': relu(x + BN(conv(relu(BN(conv(x)))))) as in Yang & Kim. norm 'gdn':
    x + conv(prelu(conv(x))) with biases and no normalisation (the GDN layers around
    the stack normalise).
    """

    def __init__(self, channels: int, norm: str = "bn"):
        super().__init__()
        self.norm = norm
        if norm == "bn":
            self.body = nn.Sequential(
                nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                nn.BatchNorm2d(channels),
            )
        elif norm == "gdn":
            self.body = nn.Sequential(
                nn.Conv2d(channels, channels, 3, 1, 1),
                nn.PReLU(channels),
                nn.Conv2d(channels, channels, 3, 1, 1),
            )
        else:
            raise ValueError(f"unknown norm {norm!r}: choose one of {', '.join(NORMS)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.body(x)
        return F.relu(y) if self.norm == "bn" else y


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

    def __init__(self, channels: int, blocks: int = 2, norm: str = "bn"):
        super().__init__()
        self.res = nn.ModuleList(ResidualBlock(channels, norm) for _ in range(blocks))
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
