"""Two real aiortc peers on 127.0.0.1: token auth, message exchange, loopback ICE,
backpressure, and a peer that vanishes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from aiortc import RTCSessionDescription

from stream.core import wire
from stream.net import loopback
from stream.net.peer import PeerOptions, ReceiverEndpoint, SenderEndpoint
from stream.net.signaling import AuthError, SignalingError, post_offer

TOKEN = "s3cret-token"
PARAMS = wire.SessionParams(640, 480, 30.0, skip=2, model="test", segmenter="selfie")
FAST = PeerOptions(heartbeat_s=0.2, timeout_s=1.5, linger_s=3.0)
ROOT = Path(__file__).resolve().parents[1]


def _frame(index: int, n: int) -> wire.FrameMsg:
    rng = np.random.default_rng(index)
    symbols = wire.quantize_symbols(rng.standard_normal(n) + 1j * rng.standard_normal(n))
    return wire.FrameMsg(index, index / 30, time.time(), wire.Mode.KEY, segment_id=1,
                         background_id=1, box=(0, 0, 64, 48), crop_shape=(48, 64),
                         latent_shape=(16, 12, 16), rate_level=4, snr_db=10.0,
                         symbols=symbols)


async def _collect(receiver: ReceiverEndpoint, timeout: float = 30.0) -> list[wire.Message]:
    return await asyncio.wait_for(_drain(receiver.messages()), timeout)


async def _drain(messages: AsyncIterator[wire.Message]) -> list[wire.Message]:
    return [msg async for msg in messages]


async def _pair(options: PeerOptions = FAST) -> tuple[ReceiverEndpoint, SenderEndpoint]:
    receiver = ReceiverEndpoint("127.0.0.1", 0, TOKEN, options)
    await receiver.start()
    sender = SenderEndpoint("127.0.0.1", receiver.port, TOKEN, PARAMS, options)
    await sender.connect()
    return receiver, sender


def test_exchange_with_token_on_loopback() -> None:
    async def scenario() -> None:
        receiver, sender = await _pair()
        background = wire.Background(1, 1, wire.BackgroundKind.PNG, 480, 640, b"\x89PNG" * 5000)
        sent = [background] + [_frame(i, 30_000 if i % 5 == 0 else 500) for i in range(20)]
        sent.append(wire.Control(wire.ControlTopic.STATS, {"fps": 30.0}))

        async def send_all() -> None:
            for msg in sent:
                assert await sender.send(msg)
            reply = await asyncio.wait_for(anext(sender.messages()), 10)
            assert reply == wire.Control(wire.ControlTopic.INTERP, {"on": False})
            await sender.close(wire.Bye(frames_read=20, frames_sent=20))

        task = asyncio.ensure_future(send_all())
        await asyncio.wait_for(receiver.connected.wait(), 10)
        await receiver.send(wire.Control(wire.ControlTopic.INTERP, {"on": False}))
        got = await _collect(receiver)
        await task
        pairs = receiver.selected_pairs() + sender.selected_pairs()
        await receiver.close()

        assert isinstance(got[0], wire.Hello) and got[0].params == PARAMS
        assert got[1:-1] == sent
        assert got[-1] == wire.Bye(20, 20)
        assert receiver.end_reason == "bye" and sender.end_reason == "bye"
        assert not receiver.errors and not sender.errors
        assert len(pairs) == 2 and loopback.all_loopback(pairs), pairs
        assert all(local[0] == remote[0] == "127.0.0.1" for local, remote in pairs)

    asyncio.run(scenario())


def test_wrong_token_and_bad_offer_are_refused() -> None:
    async def scenario() -> None:
        receiver = ReceiverEndpoint("127.0.0.1", 0, TOKEN, FAST)
        await receiver.start()
        intruder = SenderEndpoint("127.0.0.1", receiver.port, "guess", PARAMS, FAST)
        with pytest.raises(AuthError, match="refused the token"):
            await intruder.connect()
        await intruder.close()
        assert receiver.server.refused == 1 and not receiver.connected.is_set()
        with pytest.raises(SignalingError, match="400"):
            await post_offer("127.0.0.1", receiver.port, TOKEN,
                             RTCSessionDescription(sdp="v=0 not an offer", type="offer"))
        # the real sender still gets in afterwards
        sender = SenderEndpoint("127.0.0.1", receiver.port, TOKEN, PARAMS, FAST)
        await sender.connect()
        await sender.close(wire.Bye(0, 0))
        got = await _collect(receiver)
        await receiver.close()
        assert [type(m) for m in got] == [wire.Hello, wire.Bye]

    asyncio.run(scenario())


def test_hello_without_token_proof_ends_session() -> None:
    class ForgedHello(SenderEndpoint):
        async def send(self, msg: wire.Message, *, drop_if_busy: bool = False) -> bool:
            if isinstance(msg, wire.Hello):
                msg = wire.Hello(bytes(32), msg.params)
            return await super().send(msg, drop_if_busy=drop_if_busy)

    async def scenario() -> None:
        receiver = ReceiverEndpoint("127.0.0.1", 0, TOKEN, FAST)
        await receiver.start()
        sender = ForgedHello("127.0.0.1", receiver.port, TOKEN, PARAMS, FAST)
        await sender.connect()
        got = await _collect(receiver, timeout=10)
        await sender.close()
        await receiver.close()
        assert got == [] and receiver.end_reason == "auth"

    asyncio.run(scenario())


def test_backpressure_drops_are_counted() -> None:
    async def scenario() -> None:
        receiver, sender = await _pair(PeerOptions(heartbeat_s=0.2, timeout_s=3.0,
                                                   max_buffered=100_000))
        results = [await sender.send(_frame(i, 20_000), drop_if_busy=True) for i in range(30)]
        await sender.close(wire.Bye(30, sum(results), dict(sender.dropped)))
        got = await _collect(receiver)
        await receiver.close()
        frames = [m for m in got if isinstance(m, wire.FrameMsg)]
        assert sender.dropped["backpressure"] == results.count(False) > 0
        assert len(frames) == results.count(True) > 0
        assert got[-1].dropped == {"backpressure": results.count(False)}

    asyncio.run(scenario())


def test_peer_closing_abruptly_ends_the_other_side() -> None:
    async def scenario() -> None:
        receiver, sender = await _pair()
        await sender.send(_frame(0, 100))
        messages = receiver.messages()
        assert isinstance(await asyncio.wait_for(anext(messages), 10), wire.Hello)
        assert isinstance(await asyncio.wait_for(anext(messages), 10), wire.FrameMsg)
        start = time.monotonic()
        await sender.pc.close()  # no bye
        rest = await asyncio.wait_for(_drain(messages), 10)
        took = time.monotonic() - start
        await sender.close()
        await receiver.close()
        assert rest == [] and receiver.end_reason == "peer_closed" and took < 3

    asyncio.run(scenario())


KILLED_SENDER = """
import asyncio, sys
from stream.core import wire
from stream.net.peer import PeerOptions, SenderEndpoint

async def main():
    sender = SenderEndpoint("127.0.0.1", int(sys.argv[1]), sys.argv[2],
                            wire.SessionParams(64, 48, 30.0), PeerOptions(heartbeat_s=0.2))
    await sender.connect()
    await sender.send(wire.FrameMsg(0, 0.0, 0.0, wire.Mode.SKIP))
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_killed_sender_times_out_cleanly() -> None:
    async def scenario() -> None:
        receiver = ReceiverEndpoint("127.0.0.1", 0, TOKEN, FAST)
        await receiver.start()
        child = subprocess.Popen([sys.executable, "-c", KILLED_SENDER, str(receiver.port), TOKEN],
                                 cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            messages = receiver.messages()
            assert isinstance(await asyncio.wait_for(anext(messages), 30), wire.Hello)
            assert isinstance(await asyncio.wait_for(anext(messages), 10), wire.FrameMsg)
            child.send_signal(signal.SIGKILL)
            start = time.monotonic()
            rest = await asyncio.wait_for(_drain(messages), 10)
            took = time.monotonic() - start
        finally:
            child.kill()
            child.wait()
        await receiver.close()
        assert rest == [] and receiver.end_reason in ("timeout", "peer_closed")
        assert took < FAST.timeout_s + 2

    asyncio.run(scenario())
