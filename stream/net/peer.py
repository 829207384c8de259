"""The two WebRTC peers that carry wire messages over one ordered, reliable data channel.

Receiver::

    receiver = ReceiverEndpoint("127.0.0.1", 8700, token)
    await receiver.start()                      # listens for the sender's offer
    async for msg in receiver.messages():       # Hello (checked), FrameMsg, Background,
        ...                                     # Control, and Bye as the last one
    await receiver.close()
    receiver.end_reason, receiver.errors        # why it ended; wire errors by reason

Sender::

    sender = SenderEndpoint("127.0.0.1", 8700, token, SessionParams(640, 480, 30.0))
    await sender.connect()                      # signalling, ICE, data channel, Hello
    await sender.send(msg)                      # waits while the channel is backed up
    await sender.send(frame, drop_if_busy=True) # or drops it, counted as "backpressure"
    await sender.close(Bye(...))                # waits until the receiver has it

Either side may send and read: the receiver answers with Control messages (e.g. the
interpolation state) that the sender reads from its own ``messages()``, or that go to a
handler set with ``on_control(topic, handler)`` as they arrive (e.g. loss reports).

Both sides send a heartbeat every ``heartbeat_s`` and end by themselves; ``end_reason``
says why: "bye" (the sender said bye), "peer_closed" (data channel or connection
closed), "timeout" (nothing heard for ``timeout_s``), "auth" (a Hello without the
token's proof), "refused" (the receiver refused the session: ``receiver.refuse(reason,
detail)`` tells the sender, whose ``refusal`` then holds the one-line why), "closed"
(closed here). ``messages()`` then finishes and ``send`` raises
PeerGone. When the signalling host is a loopback address, ICE stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web
from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from stream.core import wire
from stream.net import loopback, signaling

CHANNEL_LABEL = "semstream"


class PeerGone(ConnectionError):
    """The session has ended (peer closed, timed out, or closed here)."""


@dataclass(frozen=True)
class PeerOptions:
    """Timing and buffering of a peer. Times in seconds, sizes in bytes."""

    heartbeat_s: float = 0.5        # heartbeat period
    timeout_s: float = 5.0          # silence after which the peer counts as gone
    connect_timeout_s: float = 20.0  # signalling + ICE + DTLS + channel open
    max_buffered: int = 1 << 20     # data-channel bufferedAmount above which send() waits
    inbox_frames: int = 256         # received frames held for messages() before dropping
    linger_s: float = 5.0           # close(bye): longest wait for the receiver to hang up


class _Endpoint:
    """What both peers share: the channel, packing, liveness, inbox and counters."""

    def __init__(self, token: str, on_loopback: bool, options: PeerOptions) -> None:
        self.token = signaling.check_token(token)
        self.on_loopback = on_loopback
        self.options = options
        self.pc = self._new_pc()
        self.channel: RTCDataChannel | None = None
        self.end_reason: str | None = None
        self.errors: Counter[str] = Counter()   # wire errors by reason (wire.REASONS)
        self.dropped: Counter[str] = Counter()  # messages dropped here, by reason
        self.sent_messages = self.sent_bytes = 0
        self.received_messages = self.received_bytes = 0
        self._packer = wire.Packer()
        self._unpacker = wire.Unpacker()
        self._inbox: asyncio.Queue[wire.Message | None] = asyncio.Queue()
        self._handlers: dict[wire.ControlTopic, Callable[[wire.Control], None]] = {}
        self._ended = asyncio.Event()
        self._drained = asyncio.Event()
        self._last_heard = 0.0
        self._watchdog: asyncio.Task | None = None
        self._pairs: list[tuple[loopback.Address, loopback.Address]] = []

    # -- public ------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """True once the session is over (see ``end_reason``)."""
        return self._ended.is_set()

    async def messages(self) -> AsyncIterator[wire.Message]:
        """Received messages in order until the session ends (heartbeats are consumed)."""
        while True:
            msg = await self._inbox.get()
            if msg is None:
                self._inbox.put_nowait(None)  # later calls end at once too
                return
            yield msg

    async def send(self, msg: wire.Message, *, drop_if_busy: bool = False) -> bool:
        """Send one message; False if dropped for backpressure. Raises PeerGone once ended."""
        kind, body = wire.encode_body(msg)
        size = wire.packed_size(len(body))
        if self._busy(size):
            if drop_if_busy:
                self.dropped["backpressure"] += 1
                return False
            await self._wait_drained(size)
        channel = self._open_channel()
        for packet in self._packer.split(kind, body):  # numbered only now: no interleaving
            channel.send(packet)
        self.sent_messages += 1
        self.sent_bytes += size
        return True

    def on_control(self, topic: wire.ControlTopic,
                   handler: Callable[[wire.Control], None]) -> None:
        """Hand Control messages of ``topic`` to ``handler`` (called on the event loop as
        each arrives; it must not raise) instead of ``messages()``."""
        self._handlers[topic] = handler

    def selected_pairs(self) -> list[tuple[loopback.Address, loopback.Address]]:
        """(local, remote) addresses of the nominated ICE pairs (as when the channel opened,
        once the connection is closed)."""
        return loopback.selected_pairs(self.pc) or self._pairs

    def stats(self) -> dict[str, object]:
        """Counters of this endpoint, JSON-ready."""
        return {"end_reason": self.end_reason, "wire_errors": dict(self.errors),
                "dropped": dict(self.dropped), "sent_messages": self.sent_messages,
                "sent_bytes": self.sent_bytes, "received_messages": self.received_messages,
                "received_bytes": self.received_bytes}

    async def close(self) -> None:
        """End the session here and release the connection."""
        self._end("closed")
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        await self.pc.close()

    # -- internals ---------------------------------------------------------------

    def _new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(loopback.rtc_configuration() if self.on_loopback else None)
        pc.on("connectionstatechange", lambda: self._on_state(pc))
        return pc

    def _open_channel(self) -> RTCDataChannel:
        if self.ended or self.channel is None or self.channel.readyState != "open":
            raise PeerGone(f"session ended ({self.end_reason or 'channel not open'})")
        return self.channel

    def _busy(self, size: int) -> bool:
        """Whether size more bytes would overfill the channel's buffer (one always fits)."""
        buffered = self._open_channel().bufferedAmount
        return buffered > 0 and buffered + size > self.options.max_buffered

    async def _wait_drained(self, size: int) -> None:
        while self._busy(size):
            # "bufferedamountlow" fires when the buffer falls to the point where size fits
            self._open_channel().bufferedAmountLowThreshold = max(
                0, self.options.max_buffered - size)
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), self.options.heartbeat_s)

    def _attach(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        self._pairs = loopback.selected_pairs(self.pc)
        channel.on("bufferedamountlow", self._drained.set)
        channel.on("message", self._on_packet)
        channel.on("close", lambda: self._end("peer_closed"))
        self._last_heard = asyncio.get_running_loop().time()
        self._watchdog = asyncio.ensure_future(self._watch())

    def _on_state(self, pc: RTCPeerConnection) -> None:
        if pc is self.pc and pc.connectionState in ("failed", "closed"):
            self._end("peer_closed")

    def _on_packet(self, packet: bytes | str) -> None:
        self._last_heard = asyncio.get_running_loop().time()
        self.received_bytes += len(packet)
        try:
            msg = self._unpacker.feed(packet)
        except wire.WireError as exc:
            self.errors[exc.reason] += 1
            return
        if msg is None or self.ended:
            return
        if isinstance(msg, wire.Control) and msg.topic == wire.ControlTopic.HEARTBEAT:
            return
        self.received_messages += 1
        self._deliver(msg)

    def _deliver(self, msg: wire.Message) -> None:
        if isinstance(msg, wire.Control) and msg.topic in self._handlers:
            self._handlers[msg.topic](msg)
            return
        if isinstance(msg, wire.FrameMsg) and self._inbox.qsize() >= self.options.inbox_frames:
            self.dropped["inbox_full"] += 1
            return
        self._inbox.put_nowait(msg)
        if isinstance(msg, wire.Bye):
            self._end("bye")

    async def _watch(self) -> None:
        """Send heartbeats; end the session after timeout_s of silence from the peer."""
        loop = asyncio.get_running_loop()
        heartbeat = wire.Control(wire.ControlTopic.HEARTBEAT)
        while not self.ended:
            if loop.time() - self._last_heard > self.options.timeout_s:
                self._end("timeout")
                break
            with contextlib.suppress(PeerGone):
                for packet in self._packer.pack(heartbeat):
                    self._open_channel().send(packet)
            await asyncio.sleep(self.options.heartbeat_s)

    def _end(self, reason: str) -> None:
        if self.ended:
            return
        self.end_reason = reason
        self._ended.set()
        self._drained.set()
        self._inbox.put_nowait(None)


class ReceiverEndpoint(_Endpoint):
    """Listens on host:port for one sender with the token; yields its messages.

    The first message must be a Hello proving the token (HMAC of this receiver's nonce),
    else the session ends with end_reason "auth". ``connected`` is set when the sender's
    data channel arrives; ``hello`` holds its Hello. A second sender gets HTTP 409.
    """

    def __init__(self, host: str, port: int, token: str,
                 options: PeerOptions | None = None) -> None:
        super().__init__(token, loopback.is_loopback(host), options or PeerOptions())
        self.nonce = secrets.token_bytes(16)
        self.hello: wire.Hello | None = None
        self.server = signaling.SignalingServer(host, port, token, self._on_offer)
        self._offered = False
        self.connected = asyncio.Event()

    @property
    def port(self) -> int:
        """The listening port (the real one when 0 was asked)."""
        return self.server.port

    async def start(self) -> None:
        """Start listening for the sender's offer."""
        await self.server.start()

    async def close(self) -> None:
        """Stop listening and end the session."""
        await self.server.stop()
        await super().close()

    async def _on_offer(self, offer: RTCSessionDescription
                        ) -> tuple[RTCSessionDescription, dict]:
        if self._offered:
            raise signaling.BusyError("this receiver already serves a sender")
        self._offered = True
        self.pc.on("datachannel", self._on_channel)
        pc = self.pc
        try:
            answer = await signaling.local_answer(pc, offer, self.on_loopback)
        except ValueError as exc:
            self.pc, self._offered = self._new_pc(), False  # ready for a proper offer
            await pc.close()
            raise web.HTTPBadRequest(text=f"unusable SDP offer: {exc}") from None
        return answer, {"nonce": self.nonce.hex()}

    def _on_channel(self, channel: RTCDataChannel) -> None:
        if self.channel is not None or channel.label != CHANNEL_LABEL:
            channel.close()
            return
        self._attach(channel)
        self.connected.set()

    def _deliver(self, msg: wire.Message) -> None:
        if self.hello is None:
            proof = wire.token_proof(self.token, self.nonce)
            if not (isinstance(msg, wire.Hello)
                    and hmac.compare_digest(msg.proof, proof)):
                self._end("auth")
                asyncio.ensure_future(self.pc.close())
                return
            self.hello = msg
        super()._deliver(msg)
        if isinstance(msg, wire.Bye):
            asyncio.ensure_future(self.pc.close())  # tells the sender everything arrived

    async def refuse(self, reason: str, detail: str) -> None:
        """Refuse the session: tell the sender why (Control REFUSED), wait until it hangs
        up (at most linger_s), then end with end_reason "refused"."""
        refusal = wire.Control(wire.ControlTopic.REFUSED, {"reason": reason, "detail": detail})
        with contextlib.suppress(PeerGone):
            await self.send(refusal)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), self.options.linger_s)
        self._end("refused")
        self.end_reason = "refused"  # also when the sender's hang-up ended it first
        await self.pc.close()


class SenderEndpoint(_Endpoint):
    """Connects to a ReceiverEndpoint at host:port with the token and sends messages."""

    def __init__(self, host: str, port: int, token: str, params: wire.SessionParams,
                 options: PeerOptions | None = None) -> None:
        super().__init__(token, loopback.is_loopback(host), options or PeerOptions())
        self.host, self.port, self.params = host, port, params
        self.refusal: str | None = None  # the receiver's one-line why, when it refused

    async def connect(self) -> None:
        """Signal, connect and say Hello; SignalingError/PeerGone when that fails."""
        channel = self.pc.createDataChannel(CHANNEL_LABEL, ordered=True)
        opened = asyncio.Event()
        channel.on("open", opened.set)
        offer = await signaling.local_offer(self.pc, self.on_loopback)
        answer, extra = await signaling.post_offer(self.host, self.port, self.token, offer,
                                                   self.options.connect_timeout_s)
        try:
            nonce = bytes.fromhex(str(extra["nonce"]))
        except (KeyError, ValueError):
            raise signaling.SignalingError("receiver's answer carries no session nonce") \
                from None
        await signaling.remote_answer(self.pc, answer, self.on_loopback)
        try:
            await asyncio.wait_for(opened.wait(), self.options.connect_timeout_s)
        except TimeoutError:
            await self.pc.close()
            raise PeerGone(f"no data channel to {self.host}:{self.port} within "
                           f"{self.options.connect_timeout_s:g} s") from None
        self._attach(channel)
        await self.send(wire.Hello(wire.token_proof(self.token, nonce), self.params))

    async def close(self, bye: wire.Bye | None = None) -> None:
        """Send ``bye`` (if given and still connected), wait for the receiver to hang up
        (at most linger_s), then release the connection."""
        if bye is not None and not self.ended:
            with contextlib.suppress(PeerGone):
                await self.send(bye)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ended.wait(), self.options.linger_s)
            if self.end_reason == "peer_closed":
                self.end_reason = "bye"  # the receiver hung up after reading the bye
        await super().close()

    def _deliver(self, msg: wire.Message) -> None:
        if isinstance(msg, wire.Control) and msg.topic == wire.ControlTopic.REFUSED:
            try:
                self.refusal = wire.check_refused(msg.body)
            except wire.ControlRefused as exc:
                self.dropped[exc.reason] += 1  # malformed: ignored, the session goes on
                return
            self._end("refused")
            asyncio.ensure_future(self.pc.close())  # hang up: the receiver waits for it
            return
        super()._deliver(msg)
