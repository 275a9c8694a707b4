"""The real service on loopback, as the web, kiosk, download and staff tests run it."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from kiosk.settings import Settings
from web.app import create_app
from web.limits import GuardedAppRunner


def loopback_settings(data_dir: Path, models_dir: Path, **environ: str) -> Settings:
    """Settings for a server on a free loopback port whose public URL is that address, as a
    booth's LAN address would be; ``environ`` adds or overrides ARTBOOTH_* values."""
    port = unused_port()
    return Settings.load(
        environ={
            "ARTBOOTH_DATA_DIR": str(data_dir),
            "ARTBOOTH_MODELS_DIR": str(models_dir),
            "ARTBOOTH_PORT": str(port),
            "ARTBOOTH_PUBLIC_URL": f"http://127.0.0.1:{port}",
            # Workers load their models but compose no generated photo: the suite starts dozens of
            # servers and no visitor waits on them (tests/test_looks.py checks the warm-up itself).
            "ARTBOOTH_COMPOSE_WARM_UP": "false",
            # Nor do their captures solve the matte's edge band again: that loads pymatting in every
            # worker and adds 0.15-0.4 s a capture, and the servers' tests are about the service;
            # the band solve has its own tests through the real pipeline (test_matting_edges,
            # test_cutout) on the default settings.
            "ARTBOOTH_MATTING_BAND_SOLVE": "false",
            # The public upload form is off by default (privacy); the suite's servers make their photos
            # through it (POST /compose, /api/compose). tests/test_kiosk.py checks the default.
            "ARTBOOTH_PUBLIC_UPLOAD": "true",
            **environ,
        }
    )


class GuardedTestServer(TestServer):
    """aiohttp's test server with the service's own connection limits (as `artbooth serve` runs)."""

    async def _make_runner(self, **kwargs) -> GuardedAppRunner:
        return GuardedAppRunner(self.app, **kwargs)


@asynccontextmanager
async def running(
    settings: Settings, app: web.Application | None = None, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[TestServer]:
    """The app (by default the service's own) serving on ``settings.port`` until the block ends,
    over HTTPS with ``ssl_context`` (kiosk.tls.server_context, as `artbooth serve` makes it)."""
    server = GuardedTestServer(app if app is not None else create_app(settings), host="127.0.0.1", port=settings.port)
    await server.start_server(ssl=ssl_context)
    try:
        yield server
    finally:
        await server.close()
