"""Loss reports on a live link (issue 15): the receiver tells the sender which frames it
lost (Control LOST), the sender checks each report against the frames it sent, refuses
and counts hostile ones, and has temporal coding send the lost frames' cells again."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from stream.core import wire
from stream.core.config import PipelineConfig, ReceiverConfig, SenderConfig, TemporalConfig
from stream.core.sender import SenderCore
from stream.core.sources import VideoFileSource
from stream.net import live
from stream.net.peer import PeerOptions, ReceiverEndpoint

TOKEN = "lost-token"
FAST = PeerOptions(heartbeat_s=0.2, timeout_s=5.0, linger_s=5.0)
SMALL = 160 * 120  # resolution check: keeps the JSCC work small on a 2-core machine

SENT = {0, 1, 2, 3, 5, 6}  # frame 4 skipped or never handed to the channel
LAST = 6


def _check(body, reported=()):
    return wire.check_lost(body, SENT.__contains__, LAST, set(reported))


def test_good_lost_reports_pass():
    assert _check({"frames": [3]}) == [3]
    assert _check({"frames": [6, 0, 2]}) == [6, 0, 2]
    assert _check({"frames": list(SENT)}, reported={9}) == list(SENT)


@pytest.mark.parametrize(("body", "reason"), [
    ({}, "bad-body"),
    ({"frames": 3}, "bad-body"),
    ({"frames": "3"}, "bad-body"),
    ({"frames": {"3": 1}}, "bad-body"),
    ({"frames": [3], "why": "x"}, "bad-body"),
    ({"frames": []}, "empty"),
    ({"frames": [1] * (wire.MAX_LOST_FRAMES + 1)}, "too-many"),
    ({"frames": [-1]}, "bad-index"),
    ({"frames": [2.0]}, "bad-index"),
    ({"frames": [True]}, "bad-index"),
    ({"frames": ["2"]}, "bad-index"),
    ({"frames": [None]}, "bad-index"),
    ({"frames": [[2]]}, "bad-index"),
    ({"frames": [7]}, "future-index"),
    ({"frames": [2, 10 ** 30]}, "future-index"),
    ({"frames": [4]}, "not-sent"),
    ({"frames": [2, 2]}, "repeated"),
])
def test_hostile_lost_reports_are_refused_with_a_reason(body, reason):
    with pytest.raises(wire.ControlRefused) as refused:
        _check(body)
    assert refused.value.reason == reason


def test_a_frame_reported_before_is_refused():
    with pytest.raises(wire.ControlRefused) as refused:
        _check({"frames": [5, 3]}, reported={3})
    assert refused.value.reason == "repeated"


def test_lost_reports_cross_the_wire():
    msg = wire.Control(wire.ControlTopic.LOST, {"frames": [4, 9]})
    unpacker = wire.Unpacker()
    got = [unpacker.feed(p) for p in wire.Packer().pack(msg)]
    assert got[-1] == msg


class _Hostile(live.ReceiveHooks):
    """Sends two malformed LOST reports once the first frame is composed."""

    def attach(self, core, endpoint, session) -> None:
        self.endpoint, self.loop, self.sent = endpoint, asyncio.get_running_loop(), False

    def before_compose(self, decoded) -> None:
        if self.sent or not isinstance(decoded.msg, wire.FrameMsg):
            return
        self.sent = True
        for body in ({"frames": [10 ** 6]}, {"frames": [-1]}):
            asyncio.run_coroutine_threadsafe(
                self.endpoint.send(wire.Control(wire.ControlTopic.LOST, body)), self.loop)


class _WaitForReport(live.SendHooks):
    """Holds frame ``index`` back in the analyse step until the sender has a loss report
    (the frames before it still go out, so the receiver sees the gap)."""

    def __init__(self, index: int, reported: threading.Event) -> None:
        self.index, self.reported = index, reported

    def before_analyse(self, core, frame) -> None:
        if frame.index == self.index:
            self.reported.wait(60)


@pytest.fixture(scope="module")
def _weights():
    from jscc import DEFAULT_MODEL
    from jscc.export import default_weights_path

    if not default_weights_path(DEFAULT_MODEL).is_file():
        pytest.skip(f"jscc/weights/{DEFAULT_MODEL}.pt is not exported yet")


@pytest.mark.usefixtures("_weights")
def test_a_frame_lost_on_the_way_is_reported_and_repaired(samples, monkeypatch):
    n, lose = 10, 3
    deliver = ReceiverEndpoint._deliver

    def lossy(self, msg):  # frame `lose` never reaches the receiver's decode step
        if not (isinstance(msg, wire.FrameMsg) and msg.index == lose):
            deliver(self, msg)

    monkeypatch.setattr(ReceiverEndpoint, "_deliver", lossy)
    reported = threading.Event()
    report_lost = SenderCore.report_lost

    def noted(self, indices):
        report_lost(self, indices)
        reported.set()

    monkeypatch.setattr(SenderCore, "report_lost", noted)
    every = PipelineConfig(realtime=False)

    async def session():
        ready = asyncio.get_running_loop().create_future()
        receiving = asyncio.ensure_future(live.receive(
            live.Address("127.0.0.1", 0), TOKEN, ReceiverConfig(interp="off"), None,
            pipeline=every, options=FAST, ready=lambda port, viewer: ready.set_result(port),
            log=sys.stdout, hooks=_Hostile()))
        port = await asyncio.wait_for(ready, 120)
        source = VideoFileSource(samples / "asl-again.mkv", realtime=False, max_frames=n)
        sent = await live.send(source, live.Address("127.0.0.1", port), TOKEN,
                               SenderConfig(snr_db=10, max_pixels=SMALL,
                                            temporal=TemporalConfig()),
                               pipeline=every, options=FAST, log=sys.stdout,
                               hooks=_WaitForReport(lose + 3, reported))
        return sent, await asyncio.wait_for(receiving, 60)

    sent, got = asyncio.run(session())
    assert sent["end_reason"] == "bye" and got["end_reason"] == "bye"
    assert sent["frames_sent"] == n and sent["frames_unaccounted"] == 0
    assert got["frames_reported_lost"] == 1 and sent["frames_reported_lost"] == 1
    assert sent["frames_repaired"] == 1  # its cells were marked to be sent again
    assert sent["lost_reports_refused"] == {"future-index": 1, "bad-index": 1}
    assert got["frames_delivered"] == n - 1 and got["frames_dropped"] == {"lost": 1}
    assert got["frames_unaccounted"] == 0
