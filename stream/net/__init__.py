"""Live sessions over WebRTC: sender and receiver peers on a data channel, HTTP
signalling with a token, loopback-only ICE, the aiohttp helper, the browser viewer and
its sink, the browser's camera as a source, the ``send``/``receive`` session glue, and the
``web/`` pages they serve. Builds on ``stream.core``.
"""
