"""A receiver that will not decode a session says why (Control REFUSED): the sender ends
with end_reason "refused" and the receiver's one-line reason, not a bare "peer gone"."""

from __future__ import annotations

import asyncio
import sys

import pytest

from stream.core import wire
from stream.core.config import PipelineConfig, ReceiverConfig, SenderConfig
from stream.core.sources import VideoFileSource
from stream.net import live
from stream.net.peer import PeerOptions, ReceiverEndpoint, SenderEndpoint

TOKEN = "refused-token"
FAST = PeerOptions(heartbeat_s=0.2, timeout_s=5.0, linger_s=5.0)
PARAMS = wire.SessionParams(64, 48, 30.0, model="wide")


def test_a_well_formed_refusal_reads_as_one_line():
    body = {"reason": "model-mismatch", "detail": "the sender codes with 'wide'"}
    assert wire.check_refused(body) == "model-mismatch: the sender codes with 'wide'"


@pytest.mark.parametrize("body", [
    {},
    {"reason": "model-mismatch"},
    {"reason": "model-mismatch", "detail": "x", "extra": 1},
    {"reason": 3, "detail": "x"},
    {"reason": "x", "detail": ["x"]},
    {"reason": "", "detail": "x"},
    {"reason": "Model Mismatch", "detail": "x"},
    {"reason": "a" * 33, "detail": "x"},
    {"reason": "x", "detail": "line one\nline two"},
    {"reason": "x", "detail": "\x1b[31mred"},
    {"reason": "x", "detail": "d" * (wire.MAX_REFUSAL_CHARS + 1)},
])
def test_malformed_refusals_are_refused(body):
    with pytest.raises(wire.ControlRefused) as refused:
        wire.check_refused(body)
    assert refused.value.reason == "bad-refusal"


def test_refusal_ends_the_senders_session_with_the_reason():
    async def session():
        receiver = ReceiverEndpoint("127.0.0.1", 0, TOKEN, FAST)
        await receiver.start()
        sender = SenderEndpoint("127.0.0.1", receiver.port, TOKEN, PARAMS, FAST)
        await sender.connect()
        first = await asyncio.wait_for(anext(receiver.messages()), 10)
        assert isinstance(first, wire.Hello)
        # a malformed refusal is dropped and counted; the session goes on
        await receiver.send(wire.Control(wire.ControlTopic.REFUSED, {"reason": "X"}))
        await receiver.refuse("model-mismatch", "give both the same --model")
        await asyncio.wait_for(sender._ended.wait(), 10)
        await sender.close()
        await receiver.close()
        return sender, receiver

    sender, receiver = asyncio.run(session())
    assert sender.end_reason == "refused" and receiver.end_reason == "refused"
    assert sender.refusal == "model-mismatch: give both the same --model"
    assert sender.dropped["bad-refusal"] == 1


@pytest.fixture(scope="module")
def _weights():
    from jscc.export import default_weights_path

    for name in ("wide", "edge"):
        if not default_weights_path(name).is_file():
            pytest.skip(f"jscc/weights/{name}.pt is not exported yet")


@pytest.mark.usefixtures("_weights")
def test_a_model_mismatch_is_reported_to_the_sender(samples, capsys):
    every = PipelineConfig(realtime=False)

    async def session():
        ready = asyncio.get_running_loop().create_future()
        receiving = asyncio.ensure_future(live.receive(
            live.Address("127.0.0.1", 0), TOKEN, ReceiverConfig(interp="off", model="edge"),
            None, pipeline=every, options=FAST,
            ready=lambda port, viewer: ready.set_result(port), log=sys.stdout))
        port = await asyncio.wait_for(ready, 120)
        source = VideoFileSource(samples / "asl-again.mkv", realtime=False, max_frames=30)
        sent = await live.send(source, live.Address("127.0.0.1", port), TOKEN,
                               SenderConfig(snr_db=10, max_pixels=160 * 120, model="wide"),
                               pipeline=every, options=FAST, log=sys.stdout)
        return sent, await asyncio.wait_for(receiving, 60)

    sent, got = asyncio.run(session())
    assert sent["end_reason"] == "refused" and got["end_reason"] == "refused"
    assert sent["refused"].startswith("model-mismatch: the sender codes with the JSCC model "
                                      "'wide', this receiver decodes with 'edge'")
    assert got["refused"] == sent["refused"]
    assert sent["frames_unaccounted"] == 0  # what was not sent is counted dropped
    out = capsys.readouterr().out
    assert "semstream send: the receiver refused the session: model-mismatch" in out
