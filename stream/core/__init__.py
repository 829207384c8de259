"""The per-frame chain, independent of transport: frames and configs, the sender core
(analyse, crop, JSCC-encode, channel) and receiver core (decode, paste back, interpolate),
the wire messages they exchange and their byte format, payloads, channel-use accounting,
the asyncio pipeline, frame sources (file, image folder, webcam) and sinks (video file).

Imports ``jscc``, ``dynbg`` and ``interp``; never ``stream.net``, ``stream.experiments``
or ``stream.cli``.
"""
