"""The HTTP side's own thread and event loop (APP.md).

The service's loop keeps the ZeroMQ sockets and must beat every half second; aiohttp
wants an asyncio loop of its own. So the server runs here, in a thread, and the two meet
only through the mailbox (requests to policy, services/mailbox.py) and call() (events
heard, handed to this loop with call_soon_threadsafe).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from typing import Any, Callable

from aiohttp import web

log = logging.getLogger(__name__)

START_S = 10.0  # the server binds within this or the start failed
STOP_S = 3.0  # the thread is done within this (supervisord waits 5 s, then kills)
ANY_ADDRESS = ("0.0.0.0", "::", "")


class HttpServer:
    def __init__(
        self,
        make_app: Callable[[], web.Application],
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        on_stop: Callable[[], None] = lambda: None,
    ) -> None:
        self.make_app, self.host, self.port, self.tls = make_app, host, port, tls
        self.on_stop = on_stop  # in the loop, before the server closes (streams end)
        self.url = ""
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Event | None = None

    def start(self) -> str:
        """Serve, and give the URL served on; OSError when the address cannot be bound."""
        self._thread = threading.Thread(target=self._run, name="gateway-http", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_S):
            raise OSError(f"the HTTP server did not start within {START_S:.0f} s")
        if self._error is not None:
            raise self._error
        return self.url

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run fn(*args) in the server's loop, from any thread; nothing if it has stopped."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # closed meanwhile
            pass

    def stop(self) -> None:
        loop, stopped = self.loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopped.set)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(STOP_S)

    # -- in the thread ----------------------------------------------------------------------
    def _run(self) -> None:
        loop = self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            runner = loop.run_until_complete(self._serve())
        except BaseException as e:  # noqa: BLE001 - told to start(), which raises it
            self._error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            assert self._stopped is not None
            loop.run_until_complete(self._stopped.wait())
        finally:
            self.on_stop()
            loop.run_until_complete(runner.cleanup())
            loop.close()

    async def _serve(self) -> web.AppRunner:
        self._stopped = asyncio.Event()
        runner = web.AppRunner(self.make_app(), shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.tls)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        port = runner.addresses[0][1]
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://{_shown_host(self.host)}:{port}"
        return runner


def _shown_host(host: str) -> str:
    """The address a browser on the LAN uses: the machine's own when bound to all."""
    if host not in ANY_ADDRESS:
        return f"[{host}]" if ":" in host else host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: picks the route, sends nothing
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"
