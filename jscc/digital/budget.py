r"""Bit budgets: the error-free bits a conventional channel code delivers in ``k`` channel uses.

For ``k`` complex channel uses at SNR :math:`\gamma` dB:

* ``capacity``: :math:`B = \lfloor k \log_2(1 + 10^{\gamma/10}) \rfloor`, a capacity-achieving
  channel code with no errors. No real code (LDPC, turbo, polar) reaches this at finite block
  length, so a baseline built on it is an *upper bound* on separate coding.
* ``mcs``: :math:`B = \lfloor k \cdot \eta(\hat\gamma - m) \rfloor` with the spectral
  efficiency :math:`\eta` of the best scheme of a realistic MCS table
  (:mod:`jscc.digital.mcs`) that works at the SNR the sender expects, :math:`\hat\gamma`,
  less the margin :math:`m` = :data:`MCS_MARGIN_DB`; zero below the table's lowest threshold
  (the cliff).

**One margin rule for every digital link** (H.264 video, backgrounds, the image baseline):
the sender picks the MCS for the SNR it expects minus :data:`MCS_MARGIN_DB` = 1 dB, so that
at the expected SNR the block error rate is far below the table's 10 % and the bits are
taken as error-free. Where the SNR the link realises falls below the threshold of the
scheme picked (fading with outdated channel knowledge, :func:`decodes`), the block is lost.

Over Rayleigh block fading (``h ~ CN(0,1)`` per block of ``block_size`` uses) the same rule
is applied per block at the realised SNR :math:`\gamma |h|^2` and summed: the sender is
assumed to know each block's gain (adaptive coding with perfect CSI), again an upper bound.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from jscc.channel import ChannelConfig, FrameChannel
from jscc.digital.mcs import spectral_efficiency

BudgetRule = Literal["capacity", "mcs"]
BUDGET_RULES: tuple[str, ...] = ("capacity", "mcs")
MCS_MARGIN_DB = 1.0  # every digital link picks its MCS this far below the SNR it expects


def bits_per_use(snr_db, rule: BudgetRule = "capacity") -> np.ndarray:
    """Bits per complex channel use a sender expecting ``snr_db`` (scalar or array, dB)
    puts on the channel: capacity, or the MCS picked ``MCS_MARGIN_DB`` below it."""
    snr_db = np.asarray(snr_db, dtype=np.float64)
    if rule == "capacity":
        return np.log2(1.0 + np.power(10.0, snr_db / 10.0))
    if rule == "mcs":
        return spectral_efficiency(snr_db - MCS_MARGIN_DB)
    raise ValueError(f"unknown budget rule {rule!r}: use one of {BUDGET_RULES}")


def decodes(sent_bits_per_use, realised_snr_db, rule: BudgetRule = "capacity") -> np.ndarray:
    """Whether a block sent at ``sent_bits_per_use`` (from :func:`bits_per_use` at the SNR
    the sender expected) arrives when the channel realises ``realised_snr_db`` (dB):
    capacity: rate <= log2(1 + SNR); mcs: the SNR reaches the threshold of the scheme used
    (no margin: the margin is the sender's backoff, not the receiver's). Arrays broadcast;
    a block carrying 0 bits/use never "arrives" (nothing was sent)."""
    rate = np.asarray(sent_bits_per_use, dtype=np.float64)
    realised = np.asarray(realised_snr_db, dtype=np.float64)
    if rule == "capacity":
        supported = np.log2(1.0 + np.power(10.0, realised / 10.0))
    elif rule == "mcs":
        supported = spectral_efficiency(realised)
    else:
        raise ValueError(f"unknown budget rule {rule!r}: use one of {BUDGET_RULES}")
    return (rate > 0) & (rate <= supported + 1e-12)


def fading_gains(channel_uses: int, channel: ChannelConfig | FrameChannel,
                 rng: np.random.Generator) -> np.ndarray | None:
    """Power gains |h|^2 per channel use (length ``channel_uses``), or None for AWGN.

    Rayleigh: h ~ CN(0, 1) drawn per block of ``channel.block_size`` uses (last block shorter);
    a :class:`jscc.channel.FrameChannel`: its current frame's gain for every use.
    """
    if channel.kind == "awgn":
        return None
    if channel.kind == "frame":  # FrameChannel: the current frame's gain for every use
        return np.full(channel_uses, channel.power_gain)
    n_blocks = math.ceil(channel_uses / channel.block_size)
    gains = rng.exponential(1.0, n_blocks)  # |h|^2 of h ~ CN(0, 1)
    return np.repeat(gains, channel.block_size)[:channel_uses]


def bit_budget(channel_uses: int, snr_db: float, rule: BudgetRule = "capacity",
               gains: np.ndarray | None = None) -> int:
    """Bits the channel code delivers in ``channel_uses`` uses at ``snr_db`` dB.

    gains: optional |h|^2 per use (see :func:`fading_gains`); the rule then applies to each
    use's SNR. With ``rule="capacity"`` this is an upper bound for any real code.
    """
    if channel_uses < 0:
        raise ValueError(f"channel uses must be >= 0, got {channel_uses}")
    if gains is None:
        return math.floor(channel_uses * float(bits_per_use(snr_db, rule)))
    if len(gains) != channel_uses:
        raise ValueError(f"need one gain per channel use: {len(gains)} != {channel_uses}")
    with np.errstate(divide="ignore"):
        per_use_db = snr_db + 10.0 * np.log10(gains)
    return math.floor(float(bits_per_use(per_use_db, rule).sum()))
