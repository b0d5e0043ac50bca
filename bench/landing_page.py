"""Benchmark: the cached public landing page vs a bare Quart route with the same bytes.

One Hypercorn worker (a child process, ``serve`` below) runs the app from
``create_app`` with a published landing page, plus one extra *bare* route on
the same app that returns the identical HTML bytes with no look-up, no
rendering and no per-response nonce. Both pass through the same kernel
middleware (request id, security headers), so the ratio isolates what the
public-page path costs: Host and slug resolution, the published-version
pointer, the page cache, a fresh CSP nonce joined into the cached parts.

Load: ``wrk`` (Debian package) on loopback, one thread, ``--connections``
keep-alive connections, alternating page/bare runs; without wrk, a bounded
aiohttp client. Only SecantusDB is started (no Firebase, no GCS): the page is
published through the white-label service directly.

    .venv/bin/python bench/landing_page.py [--duration 5] [--runs 3] [--connections 32]

Prints a Markdown table; figures are kept in bench/landing_page.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PAGE_PATH = "/t/bench/northside"
BARE_PATH = "/bench/bare"

SECTIONS: list[dict[str, Any]] = [
    {"type": "hero", "title": "Northside Hospital", "subtitle": "Care close to home, 24/7.",
     "cta_label": "Book a visit", "cta_url": "https://northside.example/book"},
    {"type": "features", "title": "Why Northside", "items": [
        {"title": "Emergency care", "description": "Open around the clock, every day."},
        {"title": "Specialists", "description": "Cardiology, oncology, paediatrics and more."},
        {"title": "Telehealth", "description": "See a doctor from home within the hour."}]},
    {"type": "rich_text", "title": "About us", "html":
        "<p>Northside has served the harbour district since <strong>1952</strong>. "
        "Read our <a href=\"https://northside.example/report\">annual report</a>.</p>"
        "<ul><li>420 beds</li><li>1,900 staff</li><li>98% patient satisfaction</li></ul>"},
    {"type": "faq", "title": "Questions", "items": [
        {"question": f"Question {n}?", "answer": f"Answer {n}, in a sentence or two."}
        for n in range(1, 5)]},
    {"type": "cta", "title": "Visit us", "text": "Parking is free for patients.",
     "button_label": "Directions", "button_url": "https://northside.example/directions"},
]


# --------------------------------------------------------------------------- server


def serve(port: int) -> None:
    """The bench server: one Hypercorn worker in this process."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config
    from quart import Response

    from core.kernel.app import create_app
    from core.kernel.settings import load_settings
    from core.tenancy.models import (
        Account,
        AccountContext,
        Principal,
        Solution,
        SystemRole,
        new_id,
        utcnow,
    )

    settings = load_settings()
    app = create_app(settings)
    bare: dict[str, bytes] = {"body": b""}

    @app.get(BARE_PATH)
    async def bare_route() -> Response:
        return Response(bare["body"], content_type="text/html; charset=utf-8")

    @app.before_serving
    async def publish() -> None:
        services = app.extensions["synergyhub"]
        db = services.db
        solution = Solution(id=new_id(), slug="bench", name="Bench Medical")
        account = Account(id=new_id(), solution_id=solution.id, slug="northside",
                          name="Northside Hospital")
        for collection, model in (("solutions", solution), ("accounts", account)):
            doc = model.model_dump()
            doc["_id"] = doc.pop("id")
            await db[collection].insert_one({**doc, "created_at": utcnow()})
        ctx = AccountContext(principal=Principal(uid="bench", system_role=SystemRole.SUPERADMIN),
                             solution=solution, account=account)
        whitelabel = services.whitelabel
        await whitelabel.save_draft(ctx, SECTIONS, None)
        await whitelabel.publish(ctx)
        tenant = await whitelabel.tenant_for_request(HOST, "bench", "northside")
        page = await whitelabel.public_page(tenant)
        bare["body"] = page.body(secrets.token_urlsafe(18))

    config = Config()
    config.bind = [f"{HOST}:{port}"]
    config.workers = 1
    config.accesslog = None
    config.errorlog = None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)

    asyncio.run(main())


# --------------------------------------------------------------------------- load


def wrk(url: str, *, duration: float, connections: int) -> tuple[float, float]:
    """Requests per second and median latency (ms) from one wrk run."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", url],
        check=True, capture_output=True, text=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    assert p50 is not None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    return rps, float(p50.group(1)) * scale


def aiohttp_load(url: str, *, duration: float, connections: int) -> tuple[float, float]:
    """Fallback load generator: keep-alive aiohttp workers for ``duration`` seconds."""
    import aiohttp

    async def run() -> tuple[float, float]:
        latencies: list[float] = []
        deadline = time.perf_counter() + duration
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                while time.perf_counter() < deadline and len(latencies) < 1_000_000:
                    start = time.perf_counter()
                    async with session.get(url) as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"{url} answered {response.status}")
                    latencies.append((time.perf_counter() - start) * 1000)

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.perf_counter() - began
        return len(latencies) / elapsed, statistics.median(latencies)

    return asyncio.run(run())


def check(base: str) -> dict[str, Any]:
    """The two routes answer the same bytes (but for the nonce) before anything is timed."""
    page = httpx.get(base + PAGE_PATH)
    bare = httpx.get(base + BARE_PATH)
    assert page.status_code == 200 and bare.status_code == 200
    assert len(page.content) == len(bare.content), (len(page.content), len(bare.content))
    nonce = re.search(r"'nonce-([^']+)'", page.headers["content-security-policy"])
    assert nonce is not None and nonce.group(1).encode() in page.content
    return {"bytes": len(page.content)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    from core.kernel.devstack import free_port, run_embedded_stack

    load = wrk if shutil.which("wrk") else aiohttp_load
    tool = "wrk" if load is wrk else "aiohttp (wrk not installed)"
    with tempfile.TemporaryDirectory(prefix="bench-landing-") as tmp, run_embedded_stack(
        Path(tmp), with_auth=False, with_gcs=False, log=lambda _: None
    ) as stack:
        port = free_port()
        env = {**os.environ, "ENV": "test", "MONGODB_URI": stack.mongo_uri,
               "SYNERGYHUB_MONGODB_DATABASE": f"bench_landing_{secrets.token_hex(3)}",
               "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9", "SYNERGYHUB_LOG_LEVEL": "WARNING"}
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env,
                                  cwd=REPO_ROOT)
        base = f"http://{HOST}:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + PAGE_PATH, timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("bench server did not start")
                time.sleep(0.1)
            info = check(base)
            for path in (PAGE_PATH, BARE_PATH):  # warm-up
                load(base + path, duration=1.0, connections=args.connections)
            page_rps: list[float] = []
            bare_rps: list[float] = []
            page_p50: list[float] = []
            bare_p50: list[float] = []
            for _ in range(args.runs):
                rps, p50 = load(base + PAGE_PATH, duration=args.duration,
                                connections=args.connections)
                page_rps.append(rps)
                page_p50.append(p50)
                rps, p50 = load(base + BARE_PATH, duration=args.duration,
                                connections=args.connections)
                bare_rps.append(rps)
                bare_p50.append(p50)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()

    ratios = [p / b for p, b in zip(page_rps, bare_rps, strict=True)]
    page_median, bare_median = statistics.median(page_rps), statistics.median(bare_rps)
    print(f"load: {tool}, 1 thread, {args.connections} connections, {args.duration:g} s x "
          f"{args.runs} alternating runs; page {info['bytes']} bytes; "
          f"load average {os.getloadavg()[0]:.2f}")
    print()
    print("| route | req/s per run | median req/s | median p50 latency |")
    print("|---|---|---|---|")
    print(f"| cached landing page `{PAGE_PATH}` | {', '.join(f'{r:.0f}' for r in page_rps)} "
          f"| {page_median:.0f} | {statistics.median(page_p50):.2f} ms |")
    print(f"| bare route, same bytes `{BARE_PATH}` | {', '.join(f'{r:.0f}' for r in bare_rps)} "
          f"| {bare_median:.0f} | {statistics.median(bare_p50):.2f} ms |")
    print()
    ratio = statistics.median(ratios)
    print(f"ratio page/bare per run: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"median {ratio:.2f} (target >= 0.8); page median {page_median:.0f} req/s "
          f"(target >= 1500)")
    if ratio < 0.8 or page_median < 1500:
        sys.exit(1)


if __name__ == "__main__":
    main()
