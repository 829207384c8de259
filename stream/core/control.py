"""Live control of a session: what a viewer may change, checked at both ends.

A request is a mapping with any of these keys (``FIELDS``):

- ``snr_db``: the simulated channel's SNR, a number in [SNR_MIN_DB, SNR_MAX_DB];
- ``channel``: "awgn" or "rayleigh";
- ``mode``: "proposed" (background + key-information crop), "direct" (whole frames) or
  "fg-latent" (proposed, sending only the latent cells inside the foreground mask);
- ``skip``: 0 (send every frame) or 2..SKIP_MAX (send every skip-th frame);
- ``interp``: how the receiver fills skipped frames, an ``interp.methods`` method or "off"
  (receiver only: never sent to the sender).

``check_request`` refuses anything else with a ``ControlError`` whose ``reason`` names the
field and whose message says what is allowed. The receiver checks a request before it
forwards the sender's part (``sender_part``) over the data channel; the sender checks it
again (it trusts no peer) and applies it between two frames with ``apply``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from stream.core.config import CHANNELS, SenderConfig

SNR_MIN_DB, SNR_MAX_DB = -5.0, 25.0
SKIP_MAX = 8
MODES = ("proposed", "direct", "fg-latent")
SENDER_FIELDS = ("snr_db", "channel", "mode", "skip")
FIELDS = (*SENDER_FIELDS, "interp")


class ControlError(ValueError):
    """A refused request: ``reason`` is a short code ("bad-snr", "unknown-field", ...)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _interp_methods() -> tuple[str, ...]:
    from interp.methods import METHOD_NAMES

    return (*METHOD_NAMES, "off")


def check_request(body: object) -> dict[str, object]:
    """The request as plain values (snr_db a float, skip an int); ControlError when a key is
    unknown, a value out of range or of the wrong type, or the request is empty."""
    if not isinstance(body, Mapping) or not body:
        raise ControlError("empty", "a request is a JSON object with at least one of "
                                    + ", ".join(FIELDS))
    unknown = [k for k in body if k not in FIELDS]
    if unknown:
        raise ControlError("unknown-field", f"unknown setting {unknown[0]!r}: choose from "
                                            + ", ".join(FIELDS))
    out: dict[str, object] = {}
    if "snr_db" in body:
        snr = body["snr_db"]
        if isinstance(snr, bool) or not isinstance(snr, int | float) or not math.isfinite(snr) \
                or not SNR_MIN_DB <= snr <= SNR_MAX_DB:
            raise ControlError("bad-snr", f"SNR must be a number from {SNR_MIN_DB:g} to "
                                          f"{SNR_MAX_DB:g} dB, got {snr!r}")
        out["snr_db"] = float(snr)
    for key, allowed in (("channel", CHANNELS), ("mode", MODES)):
        if key in body:
            if body[key] not in allowed:
                raise ControlError(f"bad-{key}", f"{key} must be one of {', '.join(allowed)}, "
                                                 f"got {body[key]!r}")
            out[key] = body[key]
    if "skip" in body:
        skip = body["skip"]
        if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0 or skip == 1 \
                or skip > SKIP_MAX:
            raise ControlError("bad-skip", f"skip must be 0 (off) or an integer from 2 to "
                                           f"{SKIP_MAX}, got {skip!r}")
        out["skip"] = skip
    if "interp" in body:
        methods = _interp_methods()
        if body["interp"] not in methods:
            raise ControlError("bad-interp", f"interp must be one of {', '.join(methods)}, "
                                             f"got {body['interp']!r}")
        out["interp"] = body["interp"]
    return out


def sender_part(request: Mapping[str, object]) -> dict[str, object]:
    """The settings of a checked request that the sender applies."""
    return {k: v for k, v in request.items() if k in SENDER_FIELDS}


def mode_name(config: SenderConfig) -> str:
    """The control mode a sender config is in (proposed, direct or fg-latent)."""
    if config.mode == "proposed" and config.fg_latent:
        return "fg-latent"
    return config.mode


def state(config: SenderConfig) -> dict[str, object]:
    """The controllable settings a sender config holds (JSON-ready)."""
    return {"snr_db": config.snr_db, "channel": config.channel, "mode": mode_name(config),
            "skip": config.skip}


def apply(config: SenderConfig, request: Mapping[str, object]) -> SenderConfig:
    """``config`` with a checked request's sender settings in force."""
    changes: dict[str, object] = {k: request[k] for k in ("snr_db", "channel", "skip")
                                  if k in request}
    if "mode" in request:
        fg = request["mode"] == "fg-latent"
        changes["mode"] = "proposed" if fg else request["mode"]
        changes["fg_latent"] = fg
    return replace(config, **changes)
