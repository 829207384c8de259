"""A realistic modulation-and-coding table for the separate-coding baseline.

Real links do not reach capacity: a scheduler picks one of a few modulation and coding
schemes (MCS) whose decoder works above a threshold SNR. Below the lowest threshold nothing
gets through (the BLER cliff). The table below uses the spectral efficiencies of the LTE
4-bit CQI table (3GPP TS 36.213, Table 7.2.3-1: QPSK, 16QAM, 64QAM with turbo codes) and
the AWGN SNR at which each reaches about 10 % block error rate, as commonly used in
link-level simulation studies (approximate: the standard itself gives no SNR thresholds).
A block sent at or above its threshold is taken as received without error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class McsEntry:
    """One scheme: usable from ``min_snr_db`` (dB) up, carrying ``efficiency`` bits per use."""

    name: str
    min_snr_db: float
    efficiency: float


LTE_CQI: tuple[McsEntry, ...] = (
    McsEntry("QPSK 78/1024", -6.7, 0.1523),
    McsEntry("QPSK 120/1024", -4.7, 0.2344),
    McsEntry("QPSK 193/1024", -2.3, 0.3770),
    McsEntry("QPSK 308/1024", 0.2, 0.6016),
    McsEntry("QPSK 449/1024", 2.4, 0.8770),
    McsEntry("QPSK 602/1024", 4.3, 1.1758),
    McsEntry("16QAM 378/1024", 5.9, 1.4766),
    McsEntry("16QAM 490/1024", 8.1, 1.9141),
    McsEntry("16QAM 616/1024", 10.3, 2.4063),
    McsEntry("64QAM 466/1024", 11.7, 2.7305),
    McsEntry("64QAM 567/1024", 14.1, 3.3223),
    McsEntry("64QAM 666/1024", 16.3, 3.9023),
    McsEntry("64QAM 772/1024", 18.7, 4.5234),
    McsEntry("64QAM 873/1024", 21.0, 5.1152),
    McsEntry("64QAM 948/1024", 22.7, 5.5547),
)


def spectral_efficiency(snr_db, table: tuple[McsEntry, ...] = LTE_CQI) -> np.ndarray:
    """Bits per complex channel use of the best scheme that works at ``snr_db``.

    snr_db: scalar or array in dB. Returns a float64 array of the same shape; 0 where the
    SNR is below the lowest threshold (nothing gets through).
    """
    thresholds = np.array([e.min_snr_db for e in table])
    if np.any(np.diff(thresholds) <= 0):
        raise ValueError("MCS table thresholds must increase strictly")
    efficiency = np.concatenate([[0.0], [e.efficiency for e in table]])
    index = np.searchsorted(thresholds, np.asarray(snr_db, dtype=np.float64), side="right")
    return efficiency[index]
