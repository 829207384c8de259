"""Serving an aiohttp application on one address (signalling, viewer, webcam page)."""

from __future__ import annotations

from aiohttp import web


async def serve(app: web.Application, host: str, port: int, what: str) -> tuple[web.AppRunner, int]:
    """Start ``app`` on host:port (port 0 picks a free one).

    Returns the runner (call ``cleanup()`` to stop) and the port really bound. Raises
    OSError naming ``what`` and the address when it cannot listen.
    """
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(f"{what} cannot listen on {host}:{port}: {exc.strerror}") from None
    return runner, runner.addresses[0][1]
