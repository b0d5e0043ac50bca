"""Socket.IO across processes: two Hypercorn processes fan out through a real Redis.

The fixture starts Debian's ``redis-server`` on a free loopback port (no
persistence) and two app processes with ``REDIS_URL`` set, both built by
``create_asgi_app`` with the ``rtprobe`` test plugin and the session's
database. A client of process A triggers an emit; a client of process B
receives it, and a client of another account on B does not.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis
import socketio

from core.kernel.devstack import free_port
from core.realtime.channel import REDIS_CHANNEL_PREFIX
from core.testing.tenancy import Personas, seed_personas

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REPO_ROOT = Path(__file__).resolve().parents[2]
NS = "/rtprobe"
WAIT = 10.0

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.skipif(
        not Path(REDIS_SERVER).exists(),
        reason="Debian redis-server is not installed (apt-get install -y redis-server; "
        "`make test` does this when run as root)",
    ),
]

SERVE = """
import asyncio, signal, sys
from hypercorn.asyncio import serve
from hypercorn.config import Config
from core.kernel.app import create_asgi_app
from core.kernel.settings import load_settings
from tests.conftest import RealtimeProbePlugin

async def main():
    app = create_asgi_app(load_settings(), extra_plugins=[("rtprobe", RealtimeProbePlugin())])
    config = Config()
    config.bind = [sys.argv[1]]
    config.accesslog = None
    config.graceful_timeout = 1
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await serve(app, config, shutdown_trigger=stop.wait)

asyncio.run(main())
"""


def _tail(path: Path) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-30:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway redis-server on 127.0.0.1 (no RDB, no AOF), stopped after the module."""
    port = free_port()
    log = tmp_path_factory.mktemp("redis") / "redis.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "yes"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if redis.Redis.from_url(url, socket_timeout=1).ping():
                    break
            except redis.RedisError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{_tail(log)}")
            time.sleep(0.05)
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def two_processes(
    redis_url: str, synergyhub_settings: Any, synergyhub_stack: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    """Process A and process B, both on the session database and the same Redis."""
    env = {
        **os.environ,
        **synergyhub_stack.env(),
        "ENV": "test",
        "SYNERGYHUB_MONGODB_DATABASE": synergyhub_settings.mongodb_database,
        "SYNERGYHUB_LOG_LEVEL": "WARNING",
        "SYNERGYHUB_REVOCATION_CHECK_SECONDS": "2",
        "SYNERGYHUB_LOAD_ENTRYPOINT_PLUGINS": "false",
        "REDIS_URL": redis_url,
    }
    logs = tmp_path_factory.mktemp("rt-procs")
    procs: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            log = logs / f"{name}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-c", SERVE, f"127.0.0.1:{port}"],
                    cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                )
            procs.append((proc, f"http://127.0.0.1:{port}", log))
        deadline = time.monotonic() + 60
        for proc, url, log in procs:
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"app process did not start:\n{_tail(log)}")
                time.sleep(0.1)
        yield procs[0][1], procs[1][1]
    finally:
        for proc, _, _ in procs:
            _stop(proc)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rt(synergyhub_services: Any, synergyhub_stack: Any) -> Personas:
    return await seed_personas(synergyhub_services.db, synergyhub_stack.firebase_auth_host,
                               enabled_plugins=["rtprobe"])


async def _connect(url: str, token: str, opened: list[socketio.AsyncClient]
                   ) -> tuple[socketio.AsyncClient, asyncio.Queue[Any]]:
    client = socketio.AsyncClient(reconnection=False)
    news: asyncio.Queue[Any] = asyncio.Queue()

    async def on_news(data: Any) -> None:
        news.put_nowait(data)

    client.on("news", on_news, namespace=NS)
    opened.append(client)
    await client.connect(url, auth={"token": token}, namespaces=[NS],
                         transports=["websocket"], wait_timeout=WAIT)
    return client, news


async def _call(client: socketio.AsyncClient, event: str, payload: dict[str, Any]) -> Any:
    ack = await client.call(event, payload, namespace=NS, timeout=WAIT)
    assert ack["ok"] is True, ack
    return ack["data"]


async def test_event_emitted_by_process_a_reaches_a_client_of_process_b(
    two_processes: tuple[str, str], redis_url: str, rt: Personas, synergyhub_settings: Any
) -> None:
    url_a, url_b = two_processes
    channel = f"{REDIS_CHANNEL_PREFIX}:{synergyhub_settings.mongodb_database}"
    listener = redis.asyncio.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 15
        while dict(await listener.pubsub_numsub(channel)).get(channel.encode(), 0) < 2:
            assert time.monotonic() < deadline, "both processes should subscribe to Redis"
            await asyncio.sleep(0.05)
    finally:
        await listener.aclose()

    account, other_account = rt.tenants[0].accounts
    opened: list[socketio.AsyncClient] = []
    try:
        on_a, news_a = await _connect(url_a, rt["ACCOUNT_ADMIN"].token, opened)
        on_b, news_b = await _connect(url_b, rt["MEMBER"].token, opened)
        other_b, news_other = await _connect(url_b, rt[f"ADMIN:{other_account}"].token, opened)
        for client, account_id in ((on_a, account), (on_b, account), (other_b, other_account)):
            await _call(client, "join", {"room": "account", "account_id": account_id})

        await _call(on_a, "broadcast", {"account_id": account, "message": "from A"})
        received = await asyncio.wait_for(news_b.get(), WAIT)
        assert received["message"] == "from A"
        assert received["from"] == rt["ACCOUNT_ADMIN"].uid
        assert (await asyncio.wait_for(news_a.get(), WAIT))["message"] == "from A"

        # A user's own room reaches their connections on every process.
        member_on_a, _ = await _connect(url_a, rt["MEMBER"].token, opened)
        await _call(on_b, "join", {"room": "user", "account_id": account})
        await _call(member_on_a, "broadcast",
                    {"account_id": account, "room": "user", "message": "to me, on B"})
        assert (await asyncio.wait_for(news_b.get(), WAIT))["message"] == "to me, on B"

        await asyncio.sleep(0.3)
        assert news_other.empty(), "another account's client must not receive the events"
    finally:
        for client in opened:
            if client.connected:
                await client.disconnect()
            await client.eio.disconnect(abort=True)
