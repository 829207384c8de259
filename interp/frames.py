"""Frame checks and the uint8 <-> tensor conversions shared by the interpolators."""

from __future__ import annotations

import numpy as np


def check_frame(frame: np.ndarray, name: str = "frame") -> np.ndarray:
    """Return frame unchanged if it is H x W x 3 uint8 (RGB), else raise ValueError."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got {frame.dtype}: convert with .astype(np.uint8)")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"{name} must be H x W x 3 (RGB), got shape {frame.shape}")
    if frame.shape[0] < 2 or frame.shape[1] < 2:
        raise ValueError(f"{name} is too small: {frame.shape[:2]}")
    return frame


def check_pair(frame0: np.ndarray, frame1: np.ndarray) -> None:
    """Raise ValueError unless both frames are valid and of the same size."""
    check_frame(frame0, "frame0")
    check_frame(frame1, "frame1")
    if frame0.shape != frame1.shape:
        raise ValueError(f"frame0 and frame1 differ in size: {frame0.shape} vs {frame1.shape}")


def check_times(times: tuple[float, ...] | list[float]) -> None:
    """Raise ValueError unless every t lies strictly between 0 and 1 (and there is one)."""
    if len(times) == 0:
        raise ValueError("no time instants given: pass at least one t in (0, 1)")
    for t in times:
        if not 0.0 < t < 1.0:
            raise ValueError(f"t must lie strictly between 0 and 1, got {t}")


def skip_times(k: int) -> tuple[float, ...]:
    """The k-1 intermediate instants i/k (i = 1..k-1) that regenerate frames dropped at skip k."""
    if k < 2:
        raise ValueError(f"skip factor must be at least 2, got {k}")
    return tuple(i / k for i in range(1, k))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round a float array in [0, 255] to uint8 (clipping)."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
