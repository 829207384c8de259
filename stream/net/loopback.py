"""Keep a WebRTC session on 127.0.0.1 when its signalling address is a loopback address.

aioice gathers only non-loopback host addresses and skips 127.0.0.1 on purpose, and
aiortc has no option for it; a browser peer also offers its LAN address. For one
RTCPeerConnection in loopback mode this module

- builds an RTCConfiguration with no ICE servers (no STUN query, no DNS lookup);
- makes each of its aioice connections gather on 127.0.0.1 only (``restrict``, called
  right before ``setLocalDescription``, where aiortc gathers);
- drops every remote candidate that is not a loopback address, mDNS ``.local`` names
  included (``filter_sdp`` on the remote description);
- ignores STUN requests from non-loopback sources, so no peer-reflexive LAN candidate
  can be learnt and nominated;
- reports the nominated candidate pairs (``selected_pairs``) so tests can assert
  127.0.0.1 <-> 127.0.0.1.

Only the given connection is changed: other peers in the same process keep the
default behaviour. Reads aioice's private ``_connection`` / ``_nominated`` (aioice 0.13).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection

LOOPBACK = "127.0.0.1"

Address = tuple[str, int]


def is_loopback(host: str) -> bool:
    """True for 'localhost' and any IPv4/IPv6 loopback address (127.0.0.0/8, ::1)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def rtc_configuration() -> RTCConfiguration:
    """Configuration without ICE servers (aiortc's default asks a public STUN server)."""
    return RTCConfiguration(iceServers=[])


def _candidate_host(line: str) -> str | None:
    """The connection address of an SDP 'a=candidate:' line, or None for other lines."""
    if not line.startswith("a=candidate:"):
        return None
    fields = line.split()
    return fields[4] if len(fields) > 4 else ""


def filter_sdp(sdp: str) -> str:
    """The SDP without candidate lines whose address is not loopback (mDNS names dropped)."""
    kept = [line for line in sdp.splitlines()
            if (host := _candidate_host(line)) is None or is_loopback(host)]
    return "\r\n".join(kept) + "\r\n"


def ice_connections(pc: RTCPeerConnection) -> list[Any]:
    """The aioice connections behind the peer connection's transports (deduplicated)."""
    transports = [t.receiver.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        transports.append(pc.sctp.transport)
    found: dict[int, Any] = {}
    for dtls in transports:
        connection = dtls.transport.iceGatherer._connection
        found[id(connection)] = connection
    return list(found.values())


def restrict(pc: RTCPeerConnection) -> None:
    """Gather on 127.0.0.1 only and ignore STUN from elsewhere, for this peer's transports.

    Call it after the transports exist (after createDataChannel/addTrack on the
    offering side, after setRemoteDescription on the answering side) and before
    setLocalDescription. Calling it twice is harmless.
    """
    for connection in ice_connections(pc):
        if getattr(connection, "_semstream_loopback", False):
            continue
        connection._semstream_loopback = True
        _gather_on_loopback(connection)
        _ignore_foreign_stun(connection)


def _gather_on_loopback(connection: Any) -> None:
    gather = connection.get_component_candidates

    async def loopback_only(component: int, addresses: list[str], timeout: int = 5) -> list:
        return await gather(component=component, addresses=[LOOPBACK], timeout=timeout)

    connection.get_component_candidates = loopback_only


def _ignore_foreign_stun(connection: Any) -> None:
    received = connection.request_received

    def loopback_requests_only(message: Any, addr: Address, protocol: Any) -> None:
        if is_loopback(addr[0]):
            received(message, addr, protocol)

    connection.request_received = loopback_requests_only


def selected_pairs(pc: RTCPeerConnection) -> list[tuple[Address, Address]]:
    """(local, remote) transport addresses of each nominated ICE pair; empty before ICE ends."""
    pairs = []
    for connection in ice_connections(pc):
        for pair in connection._nominated.values():
            pairs.append((pair.local_addr, pair.remote_addr))
    return pairs


def all_loopback(pairs: list[tuple[Address, Address]]) -> bool:
    """True when there is at least one pair and every address in them is loopback."""
    return bool(pairs) and all(is_loopback(a[0]) and is_loopback(b[0]) for a, b in pairs)
