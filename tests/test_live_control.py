"""Live control (stream.core.control): what a page may ask for, checked at both ends, and
applied by the sender and receiver cores between frames."""

from __future__ import annotations

import pytest

from stream.core import control
from stream.core.config import SenderConfig


def test_requests_are_checked_and_applied() -> None:
    request = control.check_request({"snr_db": 0, "channel": "rayleigh", "mode": "fg-latent",
                                     "skip": 2, "interp": "dis"})
    assert request["snr_db"] == 0.0 and isinstance(request["snr_db"], float)
    assert control.sender_part(request) == {"snr_db": 0.0, "channel": "rayleigh",
                                            "mode": "fg-latent", "skip": 2}
    config = control.apply(SenderConfig(), control.sender_part(request))
    assert (config.snr_db, config.channel, config.mode, config.fg_latent, config.skip) == \
        (0.0, "rayleigh", "proposed", True, 2)
    assert control.state(config) == {"snr_db": 0.0, "channel": "rayleigh", "mode": "fg-latent",
                                     "skip": 2}
    direct = control.apply(config, {"mode": "direct"})
    assert (direct.mode, direct.fg_latent) == ("direct", False)


@pytest.mark.parametrize("body, reason", [
    ({}, "empty"), ([1], "empty"), ({"volume": 3}, "unknown-field"),
    ({"snr_db": 26}, "bad-snr"), ({"snr_db": -5.5}, "bad-snr"), ({"snr_db": "10"}, "bad-snr"),
    ({"snr_db": True}, "bad-snr"), ({"snr_db": float("nan")}, "bad-snr"),
    ({"channel": "fading"}, "bad-channel"), ({"mode": "key"}, "bad-mode"),
    ({"skip": 1}, "bad-skip"), ({"skip": 2.0}, "bad-skip"), ({"skip": 9}, "bad-skip"),
    ({"interp": "magic"}, "bad-interp"),
])
def test_bad_requests_are_refused_with_a_reason(body: object, reason: str) -> None:
    with pytest.raises(control.ControlError) as refused:
        control.check_request(body)
    assert refused.value.reason == reason
    assert str(refused.value)  # a sentence for the page


def test_receiver_follows_a_skip_change_from_its_frame_on() -> None:
    from stream.core import wire
    from stream.core.config import ReceiverConfig
    from stream.core.receiver import ReceiverCore

    core = ReceiverCore(ReceiverConfig(interp="blend"))
    core.start(wire.SessionParams(64, 48, 30.0, skip=0))
    assert core.switch is None and not core._skipped(11)
    core.set_skip(3, 10)  # from frame 10 on, every 3rd frame is sent
    assert [i for i in range(8, 16) if core._skipped(i)] == [10, 11, 13, 14]
    assert core.switch is not None and core.interp_on   # the new gaps get filled
    core.set_skip(0, 14)
    assert [i for i in range(8, 17) if core._skipped(i)] == [10, 11, 13]
    assert core.set_interp_method("repeat") == "repeat" and core.interp_on
    assert core.set_interp_method("off") == "off" and not core.interp_on


def test_sender_reconfigured_between_frames() -> None:
    import numpy as np

    from stream.core import wire
    from stream.core.frames import Frame
    from stream.core.sender import SenderCore
    from tests.browser import sample_frames

    frames = sample_frames(4)
    core = SenderCore(SenderConfig(mode="direct", max_pixels=160 * 120))
    assert core.analyse(Frame(frames[0], 0, 0.0, 0.0)).mode == wire.Mode.DIRECT
    core.reconfigure(control.apply(core.config, {"mode": "fg-latent", "snr_db": 0.0,
                                                 "channel": "rayleigh"}))
    a = core.analyse(Frame(frames[1], 1, 1 / 30, 0.0))
    assert a.mode == wire.Mode.KEY and a.update is not None  # a new segment, a background
    out = core.encode(a)
    msg = out.frame_message
    assert msg.snr_db == 0.0 and msg.mask is not None        # fg-latent at the new SNR
    assert core.channel.kind == "rayleigh"
    core.reconfigure(control.apply(core.config, {"skip": 2}))
    assert core.analyse(Frame(frames[3], 3, 0.1, 0.0)).mode == wire.Mode.SKIP
    assert np.isfinite(msg.symbols).all()
    core.close()
