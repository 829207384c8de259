"""Streaming: the asyncio frame pipeline, sources and sinks, WebRTC peers, wire
format, browser viewer, the base-station scheduler and the ``semstream`` CLI.

``stream`` wires ``jscc``, ``dynbg`` and ``interp`` together; none of them imports it.
"""
