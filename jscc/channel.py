r"""Channel models over complex baseband symbols.

Conventions (shared by the whole project):

* Symbols are complex with unit average energy, :math:`\frac{1}{k}\sum_i |z_i|^2 = 1`
  over the ``k`` symbols of one transmission (one image).
* AWGN at SNR :math:`\gamma` dB adds :math:`n \sim \mathcal{CN}(0, \sigma^2)` with
  :math:`\sigma^2 = 10^{-\gamma/10}` per complex symbol, i.e. :math:`\sigma^2/2` per real
  dimension.
* Rayleigh block fading: :math:`y = h z + n` with :math:`h \sim \mathcal{CN}(0, 1)` constant
  over a block of ``block_size`` consecutive symbols and independent across blocks.
  With receiver CSI the output is the linear MMSE estimate
  :math:`\hat z = h^* y / (|h|^2 + \sigma^2)` (zero forcing, :math:`y/h`, has unbounded
  error in deep fades); without CSI the receiver gets :math:`y` as is.
* One complex symbol is one *channel use*; an image of ``H x W x 3`` values has
  ``3HW`` *source values*; the bandwidth ratio is channel uses per source value.

All functions work on torch tensors so that the JSCC model trains through them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

SnrDb = float | torch.Tensor


def real_to_complex(x: torch.Tensor) -> torch.Tensor:
    """Pair real values into complex symbols.

    x: real tensor (B, 2K, ...) whose channel pairs (0,1), (2,3), ... become one
    complex channel. Returns complex64 (B, K, ...).
    """
    b, c = x.shape[:2]
    if c % 2:
        raise ValueError(f"need an even number of real channels to pair, got {c}")
    x = x.reshape(b, c // 2, 2, *x.shape[2:]).movedim(2, -1).contiguous()
    return torch.view_as_complex(x.float())


def complex_to_real(z: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`real_to_complex`: complex (B, K, ...) -> real (B, 2K, ...)."""
    x = torch.view_as_real(z).movedim(-1, 2)
    return x.reshape(z.shape[0], -1, *z.shape[2:])


def normalize_power(z: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-12):
    """Scale each batch item to unit average symbol energy.

    z: complex (B, ...). mask: optional real/bool tensor broadcastable to z marking the
    symbols actually sent (1) and those not sent (0); the average is taken over sent
    symbols only and unsent symbols are zeroed. Returns complex (B, ...).
    """
    dims = tuple(range(1, z.dim()))
    energy = z.real**2 + z.imag**2
    if mask is None:
        mean = energy.mean(dim=dims, keepdim=True)
        return z / torch.sqrt(mean + eps)
    m = mask.to(energy.dtype).expand_as(energy)
    mean = (energy * m).sum(dim=dims, keepdim=True) / m.sum(dim=dims, keepdim=True).clamp_min(1)
    return z * m / torch.sqrt(mean + eps)


def noise_variance(snr_db: SnrDb) -> torch.Tensor | float:
    """Noise variance per complex symbol for unit-energy symbols: 10^(-SNR/10)."""
    if isinstance(snr_db, torch.Tensor):
        return torch.pow(10.0, -snr_db / 10.0)
    return 10.0 ** (-snr_db / 10.0)


def _per_item(value: SnrDb, z: torch.Tensor) -> torch.Tensor | float:
    """Broadcast a per-item value (B,) against z (B, ...)."""
    if isinstance(value, torch.Tensor) and value.dim() == 1:
        return value.to(z.device).view(-1, *([1] * (z.dim() - 1)))
    return value


def complex_noise(shape: torch.Size, variance, device=None, generator=None) -> torch.Tensor:
    """Circularly-symmetric Gaussian noise CN(0, variance), complex64 of ``shape``."""
    std = torch.sqrt(torch.as_tensor(variance, dtype=torch.float32, device=device) / 2)
    re = torch.randn(shape, device=device, generator=generator)
    im = torch.randn(shape, device=device, generator=generator)
    return torch.complex(re, im) * std


def awgn(z: torch.Tensor, snr_db: SnrDb, generator: torch.Generator | None = None):
    """Additive white Gaussian noise: y = z + n, n ~ CN(0, 10^(-SNR/10)).

    z: complex (B, ...) at unit average energy. snr_db: float or (B,) tensor in dB.
    Returns complex (B, ...).
    """
    var = _per_item(noise_variance(snr_db), z)
    return z + complex_noise(z.shape, var, z.device, generator)


def rayleigh_block(
    z: torch.Tensor,
    snr_db: SnrDb,
    block_size: int,
    csi: bool = True,
    generator: torch.Generator | None = None,
):
    """Rayleigh block fading plus AWGN: y = h z + n, h ~ CN(0, 1) per block.

    z: complex (B, ...); the symbols of each item are taken in flattened order and
    cut into blocks of ``block_size`` (the last block may be shorter).
    csi: True returns the MMSE-equalised conj(h) y / (|h|^2 + sigma^2); False returns y.
    Returns complex (B, ...).
    """
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    b = z.shape[0]
    flat = z.reshape(b, -1)
    k = flat.shape[1]
    n_blocks = math.ceil(k / block_size)
    h = complex_noise((b, n_blocks), 1.0, z.device, generator)
    h = h.repeat_interleave(block_size, dim=1)[:, :k]
    var = _per_item(noise_variance(snr_db), flat)
    y = h * flat + complex_noise(flat.shape, var, z.device, generator)
    if csi:
        y = h.conj() * y / (h.real**2 + h.imag**2 + var)
    return y.reshape(z.shape)


@dataclass(frozen=True)
class ChannelConfig:
    """A channel as the pipeline and the experiments configure it.

    kind: "awgn" or "rayleigh"; block_size: symbols per fading block (rayleigh only);
    csi: receiver knows h (rayleigh only).
    """

    kind: Literal["awgn", "rayleigh"] = "awgn"
    block_size: int = 64
    csi: bool = True

    def __post_init__(self):
        if self.kind not in ("awgn", "rayleigh"):
            raise ValueError(f"unknown channel {self.kind!r}: use 'awgn' or 'rayleigh'")

    def __call__(self, z: torch.Tensor, snr_db: SnrDb, generator=None) -> torch.Tensor:
        """Pass complex symbols z (B, ...) through the channel at ``snr_db``."""
        if self.kind == "awgn":
            return awgn(z, snr_db, generator)
        return rayleigh_block(z, snr_db, self.block_size, self.csi, generator)


def capacity(snr_db: SnrDb):
    """Shannon capacity of the AWGN channel, bits per complex channel use: log2(1 + SNR)."""
    if isinstance(snr_db, torch.Tensor):
        return torch.log2(1 + torch.pow(10.0, snr_db / 10.0))
    return math.log2(1 + 10.0 ** (snr_db / 10.0))


def source_values(height: int, width: int, channels: int = 3) -> int:
    """Number of real source values of an image: H * W * C."""
    return height * width * channels


def channel_uses(n_source_values: int, ratio: float) -> int:
    """Complex channel uses for ``n_source_values`` at bandwidth ratio ``ratio`` (rounded up)."""
    return math.ceil(n_source_values * ratio)


def bandwidth_ratio(n_channel_uses: int | float, n_source_values: int | float) -> float:
    """Channel uses per source value."""
    if n_source_values <= 0:
        raise ValueError("source value count must be positive")
    return n_channel_uses / n_source_values


def side_info_channel_uses(bits: int, bits_per_use: float = 1.0) -> int:
    """Channel uses to carry ``bits`` of side information (default 1 bit per use)."""
    return math.ceil(bits / bits_per_use)
