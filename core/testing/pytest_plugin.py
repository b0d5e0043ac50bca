"""pytest fixtures for SynergyHub and its plugins (registered as ``pytest11``).

Partners get the same real servers the kernel tests use: the embedded stack
(SecantusDB, Firebase Auth emulator, fake-gcs-server), the app built by the
one composition root, a seeded tenancy with a persona per role, and
authenticated clients. Fixtures start servers once per session and stop them
at the end; nothing is mocked.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from core.testing.tenancy import Personas, seed_personas


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: needs Debian chromium")


@pytest.fixture(scope="session")
def synergyhub_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The embedded servers, started once per test session."""
    from core.kernel.devstack import run_embedded_stack

    data_dir = Path(tmp_path_factory.mktemp("stack"))
    with run_embedded_stack(data_dir, project_id="demo-synergyhub-test") as stack:
        previous = {key: os.environ.get(key) for key in stack.env()}
        os.environ.update(stack.env())
        try:
            yield stack
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="session")
def synergyhub_settings(synergyhub_stack: Any) -> Any:
    """Test settings: a database of its own per session, a short revocation window."""
    from core.kernel.settings import load_settings

    return load_settings(
        environment="test",
        mongodb_database=f"test_{uuid.uuid4().hex[:8]}",
        revocation_check_seconds=2,
        hook_timeout_seconds=2,
        log_level="WARNING",
    )


@pytest.fixture(scope="session")
def synergyhub_extra_plugins() -> list[tuple[str, object]]:
    """Override to register plugin objects that are not installed as entry points."""
    return []


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def synergyhub_app(
    synergyhub_settings: Any, synergyhub_extra_plugins: list[tuple[str, object]]
) -> AsyncIterator[Any]:
    """The app from ``create_app``, serving (lifespan entered) for the session."""
    from core.kernel.app import create_app

    app = create_app(synergyhub_settings, extra_plugins=synergyhub_extra_plugins)
    async with app.test_app() as test_app:
        yield test_app


@pytest.fixture(scope="session")
def synergyhub_services(synergyhub_app: Any) -> Any:
    return synergyhub_app.app.extensions["synergyhub"]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def personas(synergyhub_services: Any, synergyhub_stack: Any) -> Personas:
    """Two Solutions × two Accounts × two Groups and a signed-in user per role."""
    return await seed_personas(synergyhub_services.db, synergyhub_stack.firebase_auth_host)


@pytest.fixture
def client(synergyhub_app: Any) -> Any:
    """An HTTP test client of the serving app (same process, real servers)."""
    return synergyhub_app.test_client()


@pytest.fixture(scope="session")
def fake_ai() -> Iterator[Any]:
    """A FakeAIServer (OpenAI, LiveAvatar and HeyGen stand-in) on loopback for the session.

    Call ``fake_ai.reset()`` between tests that script it or count its requests.
    """
    from core.testing.fake_ai import FakeAIServer

    with FakeAIServer() as server:
        yield server


@pytest.fixture(scope="session")
def fake_ai_settings(synergyhub_settings: Any, fake_ai: Any) -> Any:
    """``synergyhub_settings`` with every AI provider pointed at ``fake_ai`` (and its keys).

    Build an app with it: ``create_app(fake_ai_settings)`` + ``async with app.test_app()``.
    """
    from pydantic import SecretStr

    return synergyhub_settings.model_copy(update={
        "openai_api_key": SecretStr(fake_ai.openai_key),
        "openai_base_url": fake_ai.openai_base_url,
        "liveavatar_api_key": SecretStr(fake_ai.liveavatar_key),
        "liveavatar_base_url": fake_ai.base_url,
        "heygen_api_key": SecretStr(fake_ai.heygen_key),
        "heygen_base_url": fake_ai.base_url,
    })


class LiveServer:
    """Serve an ASGI app with Hypercorn on 127.0.0.1 in a thread with its own event loop.

    For end-to-end tests that need a real socket (Socket.IO clients, browsers,
    plain HTTP clients): ``with LiveServer(app) as url: ...``. Start-up
    waits until ``/healthz`` answers, so the app's lifespan has completed.
    """

    def __init__(self, app: Any, *, port: int = 0, startup_timeout: float = 60.0) -> None:
        from core.kernel.devstack import free_port

        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self._thread: Any = None
        self._loop: Any = None
        self._stop: Any = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        import asyncio

        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            config = Config()
            config.bind = [f"127.0.0.1:{self.port}"]
            config.accesslog = None
            config.graceful_timeout = 1
            await serve(self.app, config, shutdown_trigger=self._stop.wait)

        try:
            asyncio.run(main())
        except BaseException as exc:
            self._error = exc

    def start(self) -> str:
        import threading
        import time

        import httpx

        self._thread = threading.Thread(target=self._run, name="live-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError(f"live server stopped during start-up: {self._error!r}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"live server did not answer /healthz within {self.startup_timeout} s")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=15)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def live_server(
    synergyhub_settings: Any, synergyhub_extra_plugins: list[tuple[str, object]]
) -> Iterator[str]:
    """Base URL of the full ASGI app (HTTP + Socket.IO) under Hypercorn for the session.

    Built by ``create_asgi_app`` with the session settings and extra plugins,
    so it shares the session database with ``synergyhub_app`` and ``personas``;
    it has its own process-local caches (about 2 s for accounts/Solutions).
    """
    from core.kernel.app import create_asgi_app

    app = create_asgi_app(synergyhub_settings, extra_plugins=synergyhub_extra_plugins)
    with LiveServer(app) as url:
        yield url


@pytest.fixture
def tenancy_conformance(synergyhub_app: Any, personas: Personas) -> Any:
    """The tenancy conformance check (core/testing/conformance.py) on the session app.

    ``report = await tenancy_conformance(plugin="acme_notes", resources=[ResourceRoute(...)])``
    drives every route of the plugin as every persona in every scope and returns
    a report; ``report.assert_ok()`` fails listing every cross-scope read or
    write. Pass ``app=`` to check an app built with extra plugins.
    """
    from core.testing.conformance import check_tenancy

    async def run(*, app: Any = None, **kwargs: Any) -> Any:
        return await check_tenancy(app if app is not None else synergyhub_app, personas,
                                   **kwargs)

    return run
