"""Shared pieces of the benchmarks: the embedded stack, seeding, the bench server, stats.

The server half (``serve``) runs in its own process so that the load driver
(httpx, sequential requests) and the app do not share a GIL or an event loop:

* the app is the one from ``create_app`` (test settings, a database of its own),
  served by Hypercorn on 127.0.0.1 exactly as ``synergyhub serve`` does it;
* one extra route is registered on the same app before serving: a *bare* route
  that runs the identical documents query (same filter, sort, limit, same
  read keys the principal gets) with no authentication, no account context and
  no repository, and returns the same JSON body (serialised with the same
  Document model and ``public`` function as the endpoint);
* every MongoDB command the app's client sends is counted with a pymongo
  ``CommandListener`` (registered globally with ``pymongo.monitoring.register``
  before the app opens its client, because ``core.kernel.database.open_client``
  takes no listeners); an ``after_request`` hook reports the commands each
  request caused in the ``X-Bench-Db`` header, and the time spent inside the
  app (first ``before_request`` to ``after_request``) in ``X-Bench-App-Ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pymongo.monitoring

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


# --------------------------------------------------------------------------- stats


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def p50(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.1f}/{five:.1f}/{fifteen:.1f}"


# --------------------------------------------------------------------------- stack


@contextmanager
def embedded_stack(data_dir: Path, say: Any = print) -> Iterator[Any]:
    """SecantusDB and the Firebase Auth emulator (no GCS), stopped on exit."""
    from core.kernel.devstack import run_embedded_stack

    with run_embedded_stack(
        data_dir, project_id="demo-synergyhub-bench", with_gcs=False, log=say
    ) as stack:
        yield stack


# --------------------------------------------------------------------------- seeding


def _stamp(doc: dict[str, Any]) -> dict[str, Any]:
    from core.tenancy.models import new_id, utcnow

    return {"_id": new_id(), "status": "active", "created_at": utcnow(), **doc}


def create_indexes(db: Any) -> None:
    """The documents access indexes, as RepositoryFactory.create_indexes makes them."""
    from core.tenancy.repository import ACCESS_INDEXES

    for keys in ACCESS_INDEXES:
        db["documents"].create_index(list(keys))


def seed_solution(db: Any, slug: str) -> str:
    doc = _stamp({"slug": slug, "name": f"Bench {slug}", "theme": "clinical",
                  "enabled_plugins": [], "plugin_settings": {}, "domain": None})
    db["solutions"].insert_one(doc)
    return str(doc["_id"])


def seed_account(db: Any, solution_id: str, index: int) -> str:
    doc = _stamp({"solution_id": solution_id, "slug": f"acc{index}", "name": f"Account {index}"})
    db["accounts"].insert_one(doc)
    return str(doc["_id"])


def seed_user(db: Any, uid: str, email: str, memberships: list[Any]) -> None:
    from core.tenancy.identity import normalize_email
    from core.tenancy.models import utcnow

    db["users"].insert_one({
        "_id": uid, "email": email, "email_normalized": normalize_email(email),
        "system_role": None, "memberships": [m.model_dump(mode="json") for m in memberships],
        "created_at": utcnow(),
    })


def account_documents(solution_id: str, account_id: str, owner_id: str, count: int,
                      ) -> list[dict[str, Any]]:
    """``count`` raw account-scope documents, as ScopedRepository.insert would store them."""
    from bson import ObjectId

    from core.tenancy.models import Scope
    from core.tenancy.rules import resource_read_keys, resource_write_keys

    ids = {"solution_id": solution_id, "account_id": account_id, "group_id": None,
           "owner_id": owner_id}
    read_keys = resource_read_keys(Scope.ACCOUNT, **ids)
    write_keys = resource_write_keys(Scope.ACCOUNT, **ids)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=count)
    docs = []
    for i in range(count):
        when = base + timedelta(seconds=i)
        docs.append({
            "_id": str(ObjectId()),
            **ids,
            "scope": Scope.ACCOUNT.value,
            "read_keys": read_keys,
            "write_keys": write_keys,
            "created_at": when,
            "updated_at": when,
            "title": f"Document {i:05d} of {account_id[-6:]}",
            "content_type": ("application/pdf", "text/plain", "image/png")[i % 3],
            "size": 1024 + 37 * i,
            "tags": [f"t{i % 7}", f"batch{i // 100}"],
            "status": "ready",
        })
    return docs


async def sign_up(auth_host: str, email: str) -> Any:
    from core.testing.tenancy import sign_up as _sign_up

    return await _sign_up(auth_host, email)


# --------------------------------------------------------------------------- server


def _public_documents(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The endpoint's serialisation: the Document model and ``documents.routes.public``.

    Loading is what ``ScopedRepository._load`` does; using the same model and
    ``public`` keeps the body identical when fields are added, and keeps
    response serialisation out of the measured overhead (it is the
    endpoint's own work, not the kernel's).
    """
    from core.documents.models import Document
    from core.documents.routes import public

    out = []
    for doc in docs:
        data = dict(doc)
        data["id"] = data.pop("_id")
        out.append(public(Document.model_validate(data)))
    return out


class _CommandCounter(pymongo.monitoring.CommandListener):
    """A pymongo CommandListener counting ``command.collection`` per command sent."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.micros: Counter[str] = Counter()  # client-side round-trip time per label
        self._pending: dict[int, str] = {}

    def started(self, event: Any) -> None:
        name = event.command_name
        target = event.command.get(name)
        label = f"{target}.{name}" if isinstance(target, str) else name
        self.counts[label] += 1
        self._pending[event.request_id] = label

    def succeeded(self, event: Any) -> None:
        label = self._pending.pop(event.request_id, None)
        if label is not None:
            self.micros[label] += event.duration_micros

    def failed(self, event: Any) -> None:
        self.succeeded(event)


def install_bench_routes(app: Any, bare_keys: dict[str, list[str]], counter: _CommandCounter,
                         ) -> None:
    """The bare route and the per-request accounting, on the app before it serves."""
    from quart import g, request

    from core.kernel.context import services

    @app.before_request
    async def _bench_start() -> None:
        g.bench_t0 = time.perf_counter()
        g.bench_counts = counter.counts.copy()
        g.bench_micros = counter.micros.copy()

    @app.after_request
    async def _bench_report(response: Any) -> Any:
        before: Counter[str] = g.get("bench_counts") or Counter()
        delta = counter.counts - before
        response.headers["X-Bench-Db"] = ";".join(f"{k}={v}" for k, v in sorted(delta.items()))
        spent = counter.micros - (g.get("bench_micros") or Counter())
        response.headers["X-Bench-Db-Us"] = ";".join(
            f"{k}={v}" for k, v in sorted(spent.items()))
        t0 = g.get("bench_t0")
        if t0 is not None:
            response.headers["X-Bench-App-Ms"] = f"{(time.perf_counter() - t0) * 1000:.3f}"
        return response

    async def bare_documents(account_id: str) -> dict[str, Any]:
        limit = max(1, min(int(request.args.get("limit", 50)), 100))
        keys = bare_keys[account_id]
        docs = await services().db["documents"].find(
            {"read_keys": {"$in": keys}}
        ).sort([("_id", -1)]).limit(limit + 1).to_list()
        next_cursor = None
        if len(docs) > limit:
            from core.tenancy.repository import _encode_cursor

            next_cursor = _encode_cursor(None, docs[limit - 1]["_id"])
        return {"items": _public_documents(docs[:limit]), "next_cursor": next_cursor}

    app.add_url_rule("/_bench/bare/<account_id>/documents", "bench_bare_documents",
                     bare_documents, methods=["GET"])


def serve(argv: Sequence[str]) -> None:
    """Server process: ``python bench/run.py --serve --port N --database D --keys FILE``."""
    parser = argparse.ArgumentParser(prog="bench server")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--keys", type=Path, required=True)
    parser.add_argument("--with-plugins", action="store_true")
    args = parser.parse_args(argv)

    from hypercorn.asyncio import serve as hypercorn_serve

    from core.kernel.app import create_app
    from core.kernel.serving import hypercorn_config
    from core.kernel.settings import load_settings

    counter = _CommandCounter()
    # Global listeners apply to every client created afterwards: the app's
    # client is created in before_serving, so it reports to this one.
    pymongo.monitoring.register(counter)
    settings = load_settings(environment="test", mongodb_database=args.database,
                             log_level="WARNING")
    app = create_app(settings, load_entrypoints=args.with_plugins)
    install_bench_routes(app, json.loads(args.keys.read_text()), counter)
    config = hypercorn_config(f"{HOST}:{args.port}", 1)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)

    profile_path = os.environ.get("SYNERGYHUB_BENCH_PROFILE")
    if not profile_path:
        asyncio.run(main())
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(main())
    finally:
        profiler.disable()
        profiler.dump_stats(profile_path)


@dataclass
class BenchServer:
    """The bench server subprocess and a client bound to it."""

    proc: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=60.0)

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_server(stack: Any, database: str, keys: dict[str, list[str]], work_dir: Path,
                 *, with_plugins: bool = False) -> BenchServer:
    from core.kernel.devstack import free_port

    keys_file = work_dir / f"keys-{database}.json"
    keys_file.write_text(json.dumps(keys))
    port = free_port()
    log_path = work_dir / f"server-{database}.log"
    env = {**os.environ, **stack.env(), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, str(Path(__file__).with_name("run.py")), "--serve",
            "--port", str(port), "--database", database, "--keys", str(keys_file)]
    if with_plugins:
        argv.append("--with-plugins")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    server = BenchServer(proc, f"http://{HOST}:{port}", log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bench server exited: {log_path.read_text()[-2000:]}")
        try:
            if server.client.get("/readyz").status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"bench server not ready in 60 s: {log_path.read_text()[-2000:]}")


def parse_db_header(value: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for part in filter(None, value.split(";")):
        name, _, n = part.partition("=")
        counts[name] += int(n)
    return counts
