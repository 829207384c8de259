"""Well-formed but hostile wire messages for the receiver: genuine messages of a real
sender with fields set to edge values (used by the fuzz test, the hostile-peer test and
bench/fuzz_receiver.py).

A mutation is (field, function of the message -> new value); ``mutate`` applies them.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from stream.core import wire
from stream.core.config import SenderConfig
from stream.core.frames import Frame
from stream.core.sender import LIBRARY_FLAG, SenderCore

SENDERS = {  # the genuine sessions whose messages are mutated
    "key": SenderConfig(snr_db=10, max_pixels=None, background="jscc"),
    "fg-latent": SenderConfig(snr_db=10, max_pixels=None, fg_latent=True),
    "direct": SenderConfig(snr_db=5, max_pixels=None, mode="direct"),
}


def genuine_messages(frames: list[Frame], codec) -> list:
    """Every message the SENDERS put on the channel for ``frames``, in session order."""
    out = []
    for cfg in SENDERS.values():
        sender = SenderCore(cfg, codec)
        try:
            for frame in frames:
                out += sender.encode(sender.analyse(frame)).messages
        finally:
            sender.close()
    return out


def _edits(values: dict) -> list[tuple[str, object]]:
    """(field, function giving that value) for every value of every field."""
    return [(name, _const(v)) for name, vs in values.items() for v in vs]


def _const(value):
    return lambda m: value


def _symbols(fill: float):
    return lambda m: np.full(max(m.symbols.size, 1), fill, np.complex64)


def frame_mutations(width: int, height: int) -> list[tuple[str, object]]:
    """(field, value function) pairs for FrameMsg: every field at its edge values."""
    w, h = width, height
    values = {
        "index": [0, 1, 2, 7, 1 << 14, (1 << 14) + 3, 2**32 - 1],
        "mode": list(wire.Mode),
        "pts": [math.nan, math.inf, -1e300],
        "captured": [math.nan, -math.inf],
        "background_id": [0, 1, 2, 99, LIBRARY_FLAG, 2**32 - 1],
        "box": [(0, 0, 0, 0), (0, 0, w, h), (0, 0, w + 1, h), (w - 1, h - 1, w, h),
                (w, h, w, h), (5, 5, 4, 4), (0, 0, 8192, 8192), (8, 8, 40, 40)],
        "crop_shape": [(0, 0), (1, 1), (h, w), (8192, 8192), (17, 23), (32, 32)],
        "latent_shape": [(0, 0, 0), (4, 1, 1), (4, 8, 8), (8, 18, 24), (255, 8192, 8192)],
        "scale": [1e-30, 0.5, 1.0, 2.0, math.nan],
        "rate_level": [0, 4, 5, 255],
        "snr_db": [math.nan, math.inf, -1e30, 1e30, -10.0],
        "mask": [None, np.ones((1, 1), bool), np.zeros((3, 3), bool), np.ones((4, 4), bool)],
        "symbol_format": list(wire.SymbolFormat),
    }
    out = _edits(values)
    out += [("symbols", fn) for fn in (
        lambda m: np.zeros(0, np.complex64),
        _symbols(math.nan), _symbols(math.inf), _symbols(65504.0), _symbols(1e30),
        lambda m: m.symbols[: m.symbols.size // 2],
        lambda m: np.concatenate([m.symbols, m.symbols]),
        lambda m: m.symbols.reshape(1, -1))]
    return out


def background_mutations(width: int, height: int) -> list[tuple[str, object]]:
    """(field, value function) pairs for Background: wrong sizes, ids, kinds, payloads."""
    out = _edits({
        "height": [1, height + 1, 8192], "width": [1, 2 * width],
        "background_id": [0, 1, 5, LIBRARY_FLAG | 1],
        "kind": list(wire.BackgroundKind),
        "payload": [b"", b"\x00" * 7, b"\xff" * 64]})
    out += [("payload", lambda m: m.payload[: len(m.payload) // 2]),
            ("payload", lambda m: m.payload[:4] + bytes(len(m.payload) - 4))]
    return out


def mutate(msg, mutations: list[tuple[str, object]]):
    """``msg`` with each (field, value function) applied in turn."""
    for name, fn in mutations:
        msg = dataclasses.replace(msg, **{name: fn(msg)})
    return msg
