"""Hypercorn serving for `synergyhub serve` and `synergyhub dev`."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

from core.kernel.settings import Settings


def hypercorn_config(bind: str, workers: int) -> Config:
    config = Config()
    config.bind = [bind]
    config.workers = workers
    config.graceful_timeout = 10
    config.accesslog = None
    config.errorlog = "-"
    config.application_path = "core.kernel.asgi:app"
    return config


def serve_forever(settings: Settings, *, bind: str, workers: int) -> None:
    """One worker serves in this process; more are spawned by Hypercorn.

    Spawned workers import ``core.kernel.asgi``, which reads the same
    environment, so every worker runs the identical composition root.
    """
    config = hypercorn_config(bind, workers)
    if workers > 1:
        from hypercorn.run import run

        run(config)
        return
    from core.kernel.app import create_asgi_app

    app = create_asgi_app(settings)
    asyncio.run(_serve_until_signal(app, config))


async def _serve_until_signal(app: Any, config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(app, config, shutdown_trigger=stop.wait)
