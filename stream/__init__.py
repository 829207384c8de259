"""Streaming: wires ``jscc``, ``dynbg`` and ``interp`` into a sender and a receiver.

Sub-packages, imports flowing one way (``cli`` -> ``experiments`` / ``net`` -> ``core``):

- ``core``: frames, configs, the per-frame sender and receiver cores, the wire messages
  they exchange, payloads, channel-use accounting, the asyncio pipeline, sources, sinks;
- ``net``: live sessions over WebRTC (peers, signalling, loopback ICE, HTTP helper,
  browser viewer and camera source, ``web/`` pages);
- ``experiments``: the offline runner, the sweep with its report and plots, the
  base-station experiment;
- ``basestation``: the base-station scheduler (paper section IV);
- ``cli``: the ``semstream`` command.

``jscc``, ``dynbg`` and ``interp`` never import ``stream``.
"""
