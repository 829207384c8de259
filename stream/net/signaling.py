"""Offer/answer signalling over HTTP (aiohttp), with the shared-token check.

The answering side serves ``POST /offer``: a JSON body ``{"sdp": ..., "type": "offer"}``
and the token in the ``X-Semstream-Token`` header; it replies with the answer as JSON
(plus any extra fields, e.g. a session nonce). A missing or wrong token gets 403 with a
one-line reason. The same helpers serve the browser pages (viewer, webcam), which
post their offers without a token to a server bound to the local machine.

``local_offer``/``local_answer``/``remote_answer`` wrap aiortc's description calls and
apply the loopback restrictions of ``stream.net.loopback`` when asked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription

from stream.net import loopback
from stream.net.http import serve

TOKEN_HEADER = "X-Semstream-Token"
MAX_SDP_BYTES = 64 * 1024


class SignalingError(ConnectionError):
    """Signalling failed: no receiver at the address, a refusal, or a bad answer."""


class AuthError(SignalingError):
    """The receiver refused the token."""


class BusyError(Exception):
    """Raised by an offer handler that already serves a peer (answered with 409)."""


def tokens_match(given: str | None, expected: str) -> bool:
    """Constant-time comparison of two tokens (hashed first, so lengths leak nothing)."""
    if given is None:
        return False
    a = hashlib.sha256(given.encode("utf-8")).digest()
    b = hashlib.sha256(expected.encode("utf-8")).digest()
    return hmac.compare_digest(a, b)


def check_token(token: str) -> str:
    """The token if it is usable; ValueError otherwise."""
    if not token or not token.isprintable() or len(token) > 256:
        raise ValueError("token must be 1..256 printable characters: pass --token T")
    return token


async def read_offer(request: web.Request) -> RTCSessionDescription:
    """The SDP offer in a request's JSON body; HTTP 400 with a reason when malformed."""
    raw = await request.content.read(MAX_SDP_BYTES + 1)
    if len(raw) > MAX_SDP_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_SDP_BYTES, actual_size=len(raw),
                                            text="offer larger than 64 KiB")
    try:
        body = json.loads(raw)
        sdp, kind = body["sdp"], body["type"]
    except (ValueError, TypeError, KeyError):
        raise web.HTTPBadRequest(text='body must be JSON {"sdp": ..., "type": "offer"}') from None
    if kind != "offer" or not isinstance(sdp, str):
        raise web.HTTPBadRequest(text='body must be JSON {"sdp": ..., "type": "offer"}')
    return RTCSessionDescription(sdp=sdp, type="offer")


def answer_response(answer: RTCSessionDescription, **extra: object) -> web.Response:
    """A JSON response carrying an SDP answer and any extra fields."""
    return web.json_response({"sdp": answer.sdp, "type": answer.type, **extra})


async def local_offer(pc: RTCPeerConnection, on_loopback: bool) -> RTCSessionDescription:
    """Create and set the local offer (gathering completes inside); returns it."""
    if on_loopback:
        loopback.restrict(pc)
    await pc.setLocalDescription(await pc.createOffer())
    return pc.localDescription


async def local_answer(pc: RTCPeerConnection, offer: RTCSessionDescription,
                       on_loopback: bool) -> RTCSessionDescription:
    """Apply a remote offer, then create and set the answer; returns it."""
    await pc.setRemoteDescription(_filtered(offer, on_loopback))
    if on_loopback:
        loopback.restrict(pc)
    await pc.setLocalDescription(await pc.createAnswer())
    return pc.localDescription


async def answer_offer(pc: RTCPeerConnection, offer: RTCSessionDescription,
                       on_loopback: bool) -> RTCSessionDescription:
    """local_answer for an HTTP handler: an unusable offer closes pc and is answered 400."""
    try:
        return await local_answer(pc, offer, on_loopback)
    except ValueError as exc:
        await pc.close()
        raise web.HTTPBadRequest(text=f"unusable SDP offer: {exc}") from None


async def remote_answer(pc: RTCPeerConnection, answer: RTCSessionDescription,
                        on_loopback: bool) -> None:
    """Apply the remote answer to an offering peer."""
    await pc.setRemoteDescription(_filtered(answer, on_loopback))


def _filtered(desc: RTCSessionDescription, on_loopback: bool) -> RTCSessionDescription:
    sdp = loopback.filter_sdp(desc.sdp) if on_loopback else desc.sdp
    return RTCSessionDescription(sdp=sdp, type=desc.type)


OfferHandler = Callable[[RTCSessionDescription], Awaitable[tuple[RTCSessionDescription, dict]]]


class SignalingServer:
    """HTTP server on (host, port) answering token-checked offers with ``on_offer``.

    on_offer(offer) -> (answer, extra JSON fields); it may raise BusyError (409) or
    web.HTTPBadRequest for an unusable offer (see ``answer_offer``).
    """

    def __init__(self, host: str, port: int, token: str, on_offer: OfferHandler) -> None:
        self.host, self.port, self.token = host, port, check_token(token)
        self.on_offer = on_offer
        self.refused = 0  # offers refused for a missing or wrong token
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Start listening; OSError with the address when the port cannot be bound."""
        app = web.Application()
        app.router.add_post("/offer", self._offer)
        self._runner, self.port = await serve(app, self.host, self.port, "signalling")

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _offer(self, request: web.Request) -> web.Response:
        if not tokens_match(request.headers.get(TOKEN_HEADER), self.token):
            self.refused += 1
            raise web.HTTPForbidden(text=f"wrong or missing token in header {TOKEN_HEADER}: "
                                         "use the receiver's --token")
        offer = await read_offer(request)
        try:
            answer, extra = await self.on_offer(offer)
        except BusyError as exc:
            raise web.HTTPConflict(text=str(exc)) from None
        return answer_response(answer, **extra)


async def post_offer(host: str, port: int, token: str, offer: RTCSessionDescription,
                     timeout_s: float = 20.0) -> tuple[RTCSessionDescription, dict]:
    """Send an offer to a SignalingServer; returns (answer, the reply's other fields)."""
    url = f"http://{url_host(host)}:{port}/offer"
    body = {"sdp": offer.sdp, "type": offer.type}
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(url, json=body, headers={TOKEN_HEADER: token}) as reply:
                text = await reply.text()
                if reply.status == 403:
                    raise AuthError(f"receiver at {host}:{port} refused the token: {text}")
                if reply.status != 200:
                    raise SignalingError(f"receiver at {host}:{port} answered "
                                         f"{reply.status}: {text}")
                data = json.loads(text)
    except (aiohttp.ClientConnectionError, TimeoutError) as exc:
        raise SignalingError(f"no receiver at {host}:{port} ({type(exc).__name__}): start "
                             "`semstream receive --listen HOST:PORT` first") from None
    except ValueError:
        raise SignalingError(f"receiver at {host}:{port} sent an answer that is not JSON") \
            from None
    try:
        answer = RTCSessionDescription(sdp=data.pop("sdp"), type=data.pop("type"))
    except (KeyError, ValueError, AttributeError):
        raise SignalingError(f"receiver at {host}:{port} sent a malformed answer") from None
    return answer, data


def url_host(host: str) -> str:
    """host as written in a URL (IPv6 addresses in brackets)."""
    return f"[{host}]" if ":" in host else host
