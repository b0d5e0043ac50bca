"""Published landing pages in a real browser: XSS corpus, CSP, theme colour and logo.

The app (kernel + the ``wlprobe`` assets plugin) runs under Hypercorn on
loopback. Everything goes through the HTTP API with real Firebase-emulator
tokens: branding (logo and favicon from the plugin's static path), drafts
whose rich_text sections are the payloads of tests/data/xss_payloads.txt,
publishing. Then Debian's chromium loads the public pages:

* with the real headers: no payload runs (window.__xss, alert, confirm,
  prompt and print are hooked in every frame before any page script), and our
  own markup causes no CSP violation and no console error at all;
* again with the Content-Security-Policy header stripped, so the sanitizer
  alone is tested (a CSP alone would block inline handlers anyway);
* computed styles show the theme's primary colour (overridden by the brand
  colour), the Solution's theme and the tenant's logo actually painted.

Nothing leaves the machine: chromium's resolver maps every host but
127.0.0.1 to NOTFOUND.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.kernel.devstack import free_port
from tests.browser_support import CHROMIUM, LAUNCH_ARGS, REQUIRES_CHROMIUM, load_payloads
from tests.integration.whitelabel.support import LOGO_RGB, PLUGIN, AssetsPlugin

pytestmark = REQUIRES_CHROMIUM

PER_PAGE = 33
BRAND_PRIMARY = "#8a1538"

# Runs in every frame before any page script: hooks and a CSP violation listener.
HOOKS = """
(() => {
  const report = (kind, arg) => {
    let text;
    try { text = String(arg); } catch (e) { text = '?'; }
    try { window.__report(kind + ':' + text); } catch (e) {}
  };
  const define = (name, fn) => {
    try {
      Object.defineProperty(window, name, { value: fn, writable: false, configurable: false });
    } catch (e) {}
  };
  define('__xss', (n) => report('xss', n));
  define('alert', (m) => report('xss', m));
  define('confirm', (m) => { report('xss', m); return false; });
  define('prompt', (m) => { report('xss', m); return null; });
  define('print', () => report('xss', 'print'));
  document.addEventListener('securitypolicyviolation',
    (e) => report('csp', e.violatedDirective + ' ' + e.blockedURI), true);
})();
"""

# Interact with everything; http(s)/mailto links are kept from navigating, any
# other link is followed (a surviving javascript: URL would run).
EXERCISE = """
async () => {
  document.addEventListener('click', (e) => {
    const a = e.target instanceof Element ? e.target.closest('a[href]') : null;
    if (a && ['http:', 'https:', 'mailto:'].includes(a.protocol)) e.preventDefault();
  }, true);
  const kinds = ['mouseover', 'mouseenter', 'mousedown', 'mouseup', 'pointerover', 'focus',
    'focusin', 'blur', 'keydown', 'keyup', 'input', 'change', 'dblclick', 'contextmenu',
    'animationstart', 'animationend', 'transitionend', 'toggle', 'load', 'error', 'copy',
    'paste', 'dragstart', 'drop', 'touchstart', 'select'];
  for (const el of Array.from(document.querySelectorAll('*'))) {
    for (const kind of kinds) {
      try { el.dispatchEvent(new Event(kind, { bubbles: true })); } catch (e) {}
    }
    try { el.focus(); } catch (e) {}
    try { if (typeof el.click === 'function') el.click(); } catch (e) {}
    if (el.localName === 'details') { try { el.open = !el.open; } catch (e) {} }
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
}
"""

STRUCTURE = """
() => ({
  sections: document.querySelectorAll('main > section.rich-text .prose').length,
  footer: !!document.querySelector('footer'),
  scripts: document.querySelectorAll('script').length,
  handlers: Array.from(document.querySelectorAll('*')).flatMap(
    (el) => Array.from(el.attributes).filter((a) => /^on/i.test(a.name)).map((a) => a.name)),
})
"""

CONTROL = """
() => document.body.insertAdjacentHTML('beforeend', '<img src="/nope.png" onerror="__xss(999)">')
"""

APPEARANCE = """
async () => {
  const logo = document.querySelector('header img');
  await (logo && !logo.complete ? new Promise((r) => logo.addEventListener('load', r)) : null);
  const canvas = document.createElement('canvas');
  canvas.width = logo.naturalWidth; canvas.height = logo.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(logo, 0, 0);
  const pixel = Array.from(ctx.getImageData(5, 5, 1, 1).data).slice(0, 3);
  const root = getComputedStyle(document.documentElement);
  return {
    theme: document.body.className,
    primaryVar: root.getPropertyValue('--color-primary').trim(),
    heroBackground: getComputedStyle(document.querySelector('.hero')).backgroundColor,
    logoSrc: logo.getAttribute('src'),
    logoSize: [logo.naturalWidth, logo.naturalHeight],
    logoPixel: pixel,
    favicon: document.querySelector('link[rel=icon]').getAttribute('href'),
    title: document.title,
  };
}
"""




class _Server:
    """The app under Hypercorn in a thread with its own event loop."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="landing-e2e")

    def _run(self) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            config = Config()
            config.bind = [f"127.0.0.1:{self.port}"]
            config.accesslog = None
            config.graceful_timeout = 1
            await serve(self.app, config, shutdown_trigger=self.stop_event.wait)

        asyncio.run(main())

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            if not self.thread.is_alive():
                break
            time.sleep(0.05)
        raise RuntimeError("the landing-page app did not start")

    def __exit__(self, *exc: object) -> None:
        if self.loop is not None and self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=15)


@dataclass
class Site:
    base: str
    xss_pages: list[tuple[str, list[int]]] = field(default_factory=list)
    brand_page: str = ""
    corporate_page: str = ""


async def _api(http: httpx.AsyncClient, method: str, path: str, token: str,
               body: Any = None, expect: int = 200) -> Any:
    response = await http.request(method, path, json=body,
                                  headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == expect, (path, response.status_code, response.text[:500])
    return response.json() if response.content else None


async def _build_site(base: str, settings: Any, auth_host: str) -> Site:
    """Seed a tenancy and publish every page through the HTTP API."""
    from pymongo import AsyncMongoClient

    from core.testing.tenancy import seed_personas

    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_uri.get_secret_value())
    try:
        personas = await seed_personas(mongo[settings.mongodb_database], auth_host,
                                       enabled_plugins=[PLUGIN])
    finally:
        await mongo.close()
    token = personas["SUPERADMIN"].token
    site = Site(base)
    branding = {
        "product_name": "Harbour <Health>",
        "primary_color": BRAND_PRIMARY,
        "logo_url": f"/static/plugins/{PLUGIN}/logo.png",
        "logo_alt": "Harbour Health logo",
        "favicon_url": f"/static/plugins/{PLUGIN}/favicon.png",
    }
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        # The second Solution picks the corporate theme.
        other = personas.tenants[1]
        await _api(http, "PATCH", f"/api/v1/solutions/{other.solution_id}", token,
                   {"theme": "corporate"})

        async def page(tenant: int, sections: list[dict[str, Any]]) -> str:
            t = personas.tenants[tenant]
            slug = f"e2e-{uuid.uuid4().hex[:8]}"
            account = await _api(http, "POST", f"/api/v1/solutions/{t.solution_id}/accounts",
                                 token, {"slug": slug, "name": slug}, expect=201)
            url = f"/api/v1/accounts/{account['id']}"
            await _api(http, "PUT", f"{url}/branding", token, branding)
            await _api(http, "PUT", f"{url}/landing-page", token, {"sections": sections})
            await _api(http, "POST", f"{url}/landing-page/publish", token, expect=201)
            return f"/t/{t.solution_slug}/{slug}"

        payloads = load_payloads()
        hero = {"type": "hero", "title": "Welcome", "subtitle": "XSS corpus page"}
        chunks = [payloads[i:i + PER_PAGE] for i in range(0, len(payloads), PER_PAGE)]
        paths = await asyncio.gather(*(
            page(index % 2, [hero, *({"type": "rich_text", "html": p} for _, p in chunk)])
            for index, chunk in enumerate(chunks)
        ))
        site.xss_pages = [(path, [n for n, _ in chunk]) for path, chunk in zip(paths, chunks)]
        site.brand_page = await page(0, [hero, {"type": "badge", "label": "Certified"}])
        site.corporate_page = await page(1, [hero])
    return site


@pytest.fixture(scope="module")
def site(synergyhub_settings: Any, synergyhub_stack: Any,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from core.kernel.app import create_app

    settings = synergyhub_settings.model_copy(update={
        "mongodb_database": f"{synergyhub_settings.mongodb_database}_wlb",
    })
    plugin = AssetsPlugin(Path(tmp_path_factory.mktemp("wlprobe-e2e")))
    app = create_app(settings, extra_plugins=[(PLUGIN, plugin)], load_entrypoints=False)
    with _Server(app) as base:
        yield asyncio.run(_build_site(base, settings, synergyhub_stack.firebase_auth_host))


@dataclass
class Visit:
    reports: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    data: Any = None
    error: str | None = None


async def _visit_all(base: str, jobs: list[tuple[str, str, bool]]) -> dict[str, Visit]:
    """Load each (key, path, strip_csp) job; exercise XSS pages, measure the others."""
    from playwright.async_api import async_playwright

    visits: dict[str, Visit] = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            for key, path, strip_csp in jobs:
                visit = visits[key] = Visit()
                context = await browser.new_context()
                await context.expose_binding(
                    "__report", lambda source, message, v=visit: v.reports.append(message))
                await context.add_init_script(HOOKS)
                page = await context.new_page()
                page.on("console", lambda msg, v=visit: v.console_errors.append(msg.text)
                        if msg.type == "error" else None)
                page.on("pageerror", lambda exc, v=visit: v.console_errors.append(str(exc)))

                async def on_dialog(dialog: Any, v: Visit = visit) -> None:
                    v.reports.append(f"xss:dialog {dialog.message}")
                    await dialog.dismiss()

                page.on("dialog", on_dialog)
                if strip_csp:
                    async def no_csp(route: Any) -> None:
                        response = await route.fetch()
                        headers = {k: v for k, v in response.headers.items()
                                   if k.lower() != "content-security-policy"}
                        await route.fulfill(response=response, headers=headers)

                    await page.route(f"{base}{path}", no_csp)
                try:
                    response = await page.goto(f"{base}{path}", wait_until="load",
                                               timeout=20_000)
                    assert response is not None and response.status == 200, path
                    if key.startswith("xss"):
                        visit.data = await page.evaluate(STRUCTURE)
                        await asyncio.wait_for(page.evaluate(EXERCISE), timeout=20)
                    elif key.startswith("control"):
                        # Markup that *would* run, injected by the test itself.
                        await page.evaluate(CONTROL)
                        await page.wait_for_timeout(300)
                    else:
                        visit.data = await page.evaluate(APPEARANCE)
                    await page.wait_for_timeout(30)
                except Exception as exc:
                    visit.error = f"{type(exc).__name__}: {exc}"[:400]
                await context.close()
        finally:
            await browser.close()
    return visits


@pytest.fixture(scope="module")
def visits(site: Site) -> dict[str, Visit]:
    jobs: list[tuple[str, str, bool]] = []
    for index, (path, _) in enumerate(site.xss_pages):
        jobs.append((f"xss-csp-{index}", path, False))
        jobs.append((f"xss-raw-{index}", path, True))
    jobs += [("brand", site.brand_page, False), ("corporate", site.corporate_page, False),
             ("control-csp", site.brand_page, False), ("control-raw", site.brand_page, True)]
    return asyncio.run(_visit_all(site.base, jobs))


def test_corpus_is_published_through_the_api(site: Site) -> None:
    numbers = [n for _, chunk in site.xss_pages for n in chunk]
    assert len(numbers) >= 100 and numbers == list(range(1, len(numbers) + 1))


def test_harness_detects_execution_and_csp_violations(visits: dict[str, Visit]) -> None:
    """Control: an inline handler injected by the test runs without the CSP and is
    reported as a violation with it, so silence above means something."""
    raw, strict = visits["control-raw"], visits["control-csp"]
    assert raw.error is None and "xss:999" in raw.reports
    assert strict.error is None and "xss:999" not in strict.reports
    assert any(r.startswith("csp:script-src-attr") for r in strict.reports), strict.reports


def test_no_payload_executes_with_the_csp(site: Site, visits: dict[str, Visit]) -> None:
    failures = []
    for index, (path, chunk) in enumerate(site.xss_pages):
        visit = visits[f"xss-csp-{index}"]
        structure = visit.data or {}
        if (visit.reports or visit.console_errors or visit.error
                or structure.get("sections") != len(chunk) or not structure.get("footer")
                or structure.get("scripts") or structure.get("handlers")):
            failures.append((path, chunk[0], chunk[-1], visit))
    assert failures == []


def test_no_payload_executes_without_the_csp(site: Site, visits: dict[str, Visit]) -> None:
    """The sanitizer alone: the same published pages with the CSP header removed."""
    failures = []
    for index, (path, chunk) in enumerate(site.xss_pages):
        visit = visits[f"xss-raw-{index}"]
        if visit.reports or visit.error or (visit.data or {}).get("sections") != len(chunk):
            failures.append((path, chunk[0], chunk[-1], visit))
    assert failures == []


def test_theme_colour_and_logo_are_applied(visits: dict[str, Visit]) -> None:
    visit = visits["brand"]
    assert visit.error is None and visit.reports == [] and visit.console_errors == []
    data = visit.data
    assert data["theme"] == "theme-clinical"
    assert data["primaryVar"] == BRAND_PRIMARY
    assert data["heroBackground"] == "rgb(138, 21, 56)"
    assert data["logoSrc"] == f"/static/plugins/{PLUGIN}/logo.png"
    assert data["logoSize"] == [48, 24]
    assert data["logoPixel"] == list(LOGO_RGB)
    assert data["favicon"] == f"/static/plugins/{PLUGIN}/favicon.png"
    assert data["title"] == "Harbour <Health>"


def test_the_solution_theme_is_used(visits: dict[str, Visit]) -> None:
    visit = visits["corporate"]
    assert visit.error is None and visit.reports == [] and visit.console_errors == []
    assert visit.data["theme"] == "theme-corporate"
    assert visit.data["heroBackground"] == "rgb(138, 21, 56)"
    assert visit.data["logoPixel"] == list(LOGO_RGB)
