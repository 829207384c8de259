"""Live on 127.0.0.1 (issue 16): an authenticated but hostile peer sends messages the wire
format accepts and the session contradicts over the real data channel; the receiver stays
up and its report counts each one. A well-behaved sender served next on the same port is
served normally, and its channel uses count only what reached the channel."""

from __future__ import annotations

import asyncio
import dataclasses
import sys

from stream.core import wire
from stream.core.config import PipelineConfig, ReceiverConfig, SenderConfig
from stream.core.sources import VideoFileSource
from stream.net import live
from stream.net.peer import PeerOptions, SenderEndpoint
from tests.hostile import genuine_messages
from tests.test_stream_core import _frames, codec  # noqa: F401 (fixture)

TOKEN = "hostile-token"
FAST = PeerOptions(heartbeat_s=0.2, timeout_s=3.0, linger_s=5.0)
W, H = 96, 72


def _hostile(pool: list) -> list:
    """A session of a JSCC background, four bad frames, a bad background, a second Hello
    and one good frame (index 4)."""
    background = next(m for m in pool if isinstance(m, wire.Background))
    key = next(m for m in pool if isinstance(m, wire.FrameMsg) and m.symbols.size
               and m.background_id == background.background_id)
    direct = next(m for m in pool if isinstance(m, wire.FrameMsg)
                  and m.mode == wire.Mode.DIRECT)
    edit = dataclasses.replace
    return [background,
            edit(key, index=0, crop_shape=(0, 0)),
            edit(key, index=1, box=(W, H, W + 16, H + 16)),
            edit(direct, index=2, box=(0, 0, 16, 16)),
            edit(key, index=3, background_id=77),
            edit(background, background_id=2, height=H + 1),
            wire.Hello(bytes(32), wire.SessionParams(2 * W, H, 30.0)),
            edit(key, index=4)]


async def _receiver(port: int) -> tuple[asyncio.Future, int]:
    ready = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(live.receive(
        live.Address("127.0.0.1", port), TOKEN, ReceiverConfig(interp="off"),
        pipeline=PipelineConfig(realtime=False), options=FAST,
        ready=lambda p, viewer: ready.set_result(p), log=sys.stdout))
    return task, await asyncio.wait_for(ready, 120)


def test_hostile_peer_is_counted_and_the_next_sender_is_served(samples, codec):  # noqa: F811
    pool = genuine_messages(_frames(samples / "asl-again.mkv", 2, (W, H)), codec)
    n = 8

    async def sessions():
        receiving, port = await _receiver(0)
        peer = SenderEndpoint("127.0.0.1", port, TOKEN, wire.SessionParams(W, H, 30.0), FAST)
        await peer.connect()
        for msg in _hostile(pool):
            await peer.send(msg)
        await peer.close(wire.Bye(5, 5))
        hostile = await asyncio.wait_for(receiving, 60)
        receiving, _ = await _receiver(port)
        source = VideoFileSource(samples / "asl-again.mkv", realtime=True, max_frames=n)
        tight = dataclasses.replace(FAST, max_buffered=8 * 1024)  # some backpressure drops
        sent = await live.send(source, live.Address("127.0.0.1", port), TOKEN,
                               SenderConfig(snr_db=10, max_pixels=160 * 120),
                               pipeline=PipelineConfig(realtime=False), options=tight,
                               log=sys.stdout)
        return hostile, sent, await asyncio.wait_for(receiving, 60)

    hostile, sent, got = asyncio.run(sessions())
    assert hostile["end_reason"] == "bye" and hostile["frames_unaccounted"] == 0
    assert hostile["frames_delivered"] == 1
    assert hostile["frames_dropped"] == {"bad-crop-shape": 1, "bad-box": 2,
                                         "no-background": 1}
    assert hostile["messages_rejected"] == {**hostile["frames_dropped"],
                                            "bad-background-size": 1, "repeated-hello": 1}
    # the next sender: every frame it put on the channel delivered, nothing refused
    assert got["end_reason"] == "bye" and got["messages_rejected"] == {}
    assert got["frames_delivered"] == sent["frames_sent"] > 0
    assert got["frames_unaccounted"] == 0 and sent["frames_unaccounted"] == 0
    drops = sent["frames_dropped"]
    assert got["frames_dropped"] == {f"sender:{r}": k for r, k in drops.items()}
    # frames dropped at transmit cost nothing: both ends count the same channel uses
    assert sent["channel_uses_total"] == got["channel_uses_total"]
    print("sender drops", drops)
