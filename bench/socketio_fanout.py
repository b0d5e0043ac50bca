"""Socket.IO fan-out: one emit to an account room with 200 clients, end to end.

    python bench/socketio_fanout.py                  # 200 clients, 60 rounds
    python bench/socketio_fanout.py --redis          # through AsyncRedisManager too
    python bench/socketio_fanout.py --clients 500 --rounds 100 --json out.json

What runs:

1. the embedded stack (SecantusDB + Firebase Auth emulator) in a temporary
   directory; a Solution enabling the bench plugin ``fanout``, one Account,
   ``--users`` real emulator users who are MEMBERs of it (clients share them
   round-robin) and one sender;
2. the app from ``create_asgi_app`` (Quart + Socket.IO, the kernel's wrapper
   and rooms, nothing mocked) under Hypercorn in a **separate process**, with
   the plugin below; with ``--redis`` a throwaway ``redis-server`` and
   ``REDIS_URL`` set, so every emit also goes through Redis pub/sub;
3. ``--clients`` ``socketio.AsyncClient`` connections (WebSocket) in this
   process, each joined to ``account:<id>`` through the kernel's ``join``;
4. per round the sender calls the plugin event ``fanout``; the kernel wrapper
   authenticates it (token, roles from the database, account context,
   plugin enabled), the handler calls ``services.realtime.emit_to_account``.

Latency of a delivery = the moment a client's ``tick`` handler runs minus the
moment the sender emitted the triggering event (both ``perf_counter`` in this
process), so it includes the sender's event through the kernel wrapper (one
database read), the emit, the WebSocket writes, and this process's own
parsing of the other clients' copies (all clients share one event loop here).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from core.hooks import PluginManifest, hookimpl

REPO_ROOT = Path(__file__).resolve().parents[1]

PLUGIN = "fanout"
NS = f"/{PLUGIN}"
TARGET_P99_MS = 100.0


# --------------------------------------------------------------------------- the app side


class FanoutPlugin:
    """One handler: emit a tick to the caller's account room."""

    @hookimpl
    def plugin_manifest(self) -> PluginManifest:
        return PluginManifest(name=PLUGIN, version="1", title="Fan-out benchmark")

    @hookimpl
    def register_socket_handlers(self) -> dict[str, Any]:
        async def fanout(ctx: Any, payload: dict[str, Any]) -> dict[str, Any]:
            started = time.perf_counter()
            await ctx.realtime.emit_to_account(
                PLUGIN, ctx.account.id, "tick", {"seq": payload.get("seq")})
            return {"seq": payload.get("seq"),
                    "emit_ms": (time.perf_counter() - started) * 1000}

        return {"fanout": fanout}


def serve(port: int) -> None:
    """The server process: the composition root, Hypercorn, stop on SIGTERM."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    from core.kernel.app import create_asgi_app
    from core.kernel.settings import load_settings

    async def main() -> None:
        app = create_asgi_app(load_settings(), extra_plugins=[(PLUGIN, FanoutPlugin())])
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.accesslog = None
        config.graceful_timeout = 1
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)

    asyncio.run(main())


# --------------------------------------------------------------------------- helpers


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server process exited during start-up")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not become healthy")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start_redis(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import redis

    from core.kernel.devstack import free_port

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("--redis needs Debian's redis-server (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=(data_dir / "redis.log").open("wb"), stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(200):
        try:
            if redis.Redis.from_url(url).ping():
                return proc, url
        except redis.RedisError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


async def _seed(stack: Any, database: str, users: int) -> tuple[str, list[str], str]:
    """One Solution enabling the plugin, one Account, ``users`` MEMBERs and a sender."""
    from pymongo import AsyncMongoClient

    from core.tenancy.directory import set_membership
    from core.tenancy.identity import normalize_email
    from core.tenancy.models import Membership, MembershipKind, Role, new_id, utcnow
    from core.testing.tenancy import sign_up

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri)
    db = client[database]
    solution_id, account_id = new_id(), new_id()
    await db["solutions"].insert_one({
        "_id": solution_id, "slug": "bench", "name": "Bench", "theme": "clinical",
        "enabled_plugins": [PLUGIN], "plugin_settings": {}, "domain": None,
        "status": "active", "created_at": utcnow()})
    await db["accounts"].insert_one({
        "_id": account_id, "solution_id": solution_id, "slug": "acc", "name": "Bench account",
        "status": "active", "created_at": utcnow()})
    run = uuid.uuid4().hex[:6]
    tokens: list[str] = []
    for start in range(0, users + 1, 20):
        batch = await asyncio.gather(*(
            sign_up(stack.firebase_auth_host, f"fan{i}-{run}@example.test")
            for i in range(start, min(users + 1, start + 20))))
        for persona in batch:
            await db["users"].insert_one({
                "_id": persona.uid, "email": persona.email,
                "email_normalized": normalize_email(persona.email), "system_role": None,
                "memberships": [], "created_at": utcnow()})
            await set_membership(db, persona.uid, Membership(
                kind=MembershipKind.ACCOUNT, role=Role.MEMBER, solution_id=solution_id,
                account_id=account_id))
            tokens.append(persona.token)
    await client.close()
    return account_id, tokens[1:], tokens[0]


# --------------------------------------------------------------------------- the driver


async def drive(url: str, account_id: str, tokens: list[str], sender_token: str,
                args: argparse.Namespace) -> dict[str, Any]:
    import socketio

    received: dict[int, list[float]] = {}
    clients: list[socketio.AsyncClient] = []

    async def connect(token: str, index: int) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False)

        async def on_tick(data: dict[str, Any]) -> None:
            received.setdefault(data["seq"], []).append(time.perf_counter())

        if index >= 0:
            client.on("tick", on_tick, namespace=NS)
        await client.connect(url, auth={"token": token}, namespaces=[NS],
                             transports=["websocket"], wait_timeout=30)
        if index >= 0:
            ack = await client.call("join", {"room": "account", "account_id": account_id},
                                    namespace=NS, timeout=30)
            assert ack["ok"], ack
        return client

    raw: list[Any] = []

    async def connect_raw(token: str) -> Any:
        """A minimal Socket.IO v5 client over one aiohttp WebSocket (cheap to parse)."""
        ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        ws = await http.ws_connect(ws_url, max_msg_size=0)
        assert (await ws.receive_str()).startswith("0")
        await ws.send_str(f"40{NS}," + json.dumps({"token": token}))
        assert (await ws.receive_str()).startswith(f"40{NS},")
        join = ["join", {"room": "account", "account_id": account_id}]
        await ws.send_str(f"42{NS},1" + json.dumps(join))
        assert '"ok":true' in (await ws.receive_str())
        prefix = f'42{NS},["tick",'

        async def read() -> None:
            async for message in ws:
                frame = message.data
                if frame == "2":
                    await ws.send_str("3")
                elif frame.startswith(prefix):
                    arrived = time.perf_counter()
                    seq = json.loads(frame[len(prefix) - 8:])[1]["seq"]
                    received.setdefault(seq, []).append(arrived)

        raw.append((ws, asyncio.create_task(read())))
        return ws

    import aiohttp

    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    started = time.perf_counter()
    for start in range(0, args.clients, 25):
        batch = range(start, min(args.clients, start + 25))
        if args.receivers == "raw":
            await asyncio.gather(*(connect_raw(tokens[i % len(tokens)]) for i in batch))
        else:
            clients.extend(await asyncio.gather(*(connect(tokens[i % len(tokens)], i)
                                                  for i in batch)))
    connect_seconds = time.perf_counter() - started
    sender = await connect(sender_token, -1)
    # The driver is not the system under test: keep its set-up out of full collections
    # (the server does the same once serving, in core/realtime/channel.py).
    gc.collect()
    gc.freeze()

    latencies: list[float] = []
    completions: list[float] = []
    acks: list[float] = []
    emits: list[float] = []
    missing = 0
    try:
        for seq in range(args.warmup + args.rounds):
            t0 = time.perf_counter()
            ack = await sender.call("fanout", {"account_id": account_id, "seq": seq},
                                    namespace=NS, timeout=30)
            t_ack = time.perf_counter()
            assert ack["ok"], ack
            deadline = time.perf_counter() + 5
            while len(received.get(seq, [])) < args.clients and time.perf_counter() < deadline:
                await asyncio.sleep(0.001)
            times = received.get(seq, [])
            if seq >= args.warmup:
                missing += args.clients - len(times)
                latencies.extend((t - t0) * 1000 for t in times)
                if times:
                    completions.append((max(times) - t0) * 1000)
                acks.append((t_ack - t0) * 1000)
                emits.append(ack["data"]["emit_ms"])
            await asyncio.sleep(args.gap)
    finally:
        for client in [*clients, sender]:
            if client.connected:
                await client.disconnect()
        for ws, task in raw:
            await ws.close()
            task.cancel()
        await http.close()

    return {
        "clients": args.clients,
        "receivers": args.receivers,
        "rounds": args.rounds,
        "deliveries": len(latencies),
        "missing": missing,
        "connect_seconds": round(connect_seconds, 2),
        "delivery_ms": {
            "p50": round(statistics.median(latencies), 2),
            "p90": round(percentile(latencies, 90), 2),
            "p99": round(percentile(latencies, 99), 2),
            "max": round(max(latencies), 2),
        },
        "last_client_ms": {
            "p50": round(statistics.median(completions), 2),
            "p99": round(percentile(completions, 99), 2),
        },
        "sender_ack_ms_p50": round(statistics.median(acks), 2),
        "server_emit_call_ms": {"p50": round(statistics.median(emits), 2),
                                "p99": round(percentile(emits, 99), 2)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--users", type=int, default=50,
                        help="distinct emulator users the clients share (default 50)")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between rounds")
    parser.add_argument("--redis", action="store_true", help="fan out through redis-server")
    parser.add_argument("--receivers", choices=("client", "raw"), default="client",
                        help="client: socketio.AsyncClient per receiver (default); raw: a "
                             "minimal WebSocket Socket.IO client, so this process's parsing "
                             "adds less to the figures")
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0

    from core.kernel.devstack import free_port, run_embedded_stack

    with tempfile.TemporaryDirectory(prefix="sh-fanout-") as tmp:
        data_dir = Path(tmp)
        with run_embedded_stack(data_dir, project_id="demo-synergyhub-bench",
                                with_gcs=False, log=lambda _: None) as stack:
            database = f"bench_fanout_{uuid.uuid4().hex[:6]}"
            account_id, tokens, sender = asyncio.run(_seed(stack, database, args.users))
            redis_proc = None
            env = {**os.environ, **stack.env(), "ENV": "test",
                   "SYNERGYHUB_MONGODB_DATABASE": database, "SYNERGYHUB_LOG_LEVEL": "WARNING",
                   "SYNERGYHUB_LOAD_ENTRYPOINT_PLUGINS": "false"}
            if args.redis:
                redis_proc, env["REDIS_URL"] = _start_redis(data_dir)
            port = free_port()
            server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)],
                                      cwd=REPO_ROOT, env=env)
            url = f"http://127.0.0.1:{port}"
            try:
                _wait_http(url, server)
                summary = asyncio.run(drive(url, account_id, tokens, sender, args))
            finally:
                _stop(server)
                if redis_proc is not None:
                    _stop(redis_proc)
    summary.update({
        "redis": args.redis,
        "target_p99_ms": TARGET_P99_MS,
        "met": summary["delivery_ms"]["p99"] <= TARGET_P99_MS and summary["missing"] == 0,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "load_average": "/".join(f"{x:.1f}" for x in os.getloadavg()),
    })
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
