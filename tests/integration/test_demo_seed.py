"""`synergyhub seed-demo` (what `make run` runs) against the embedded servers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from click.testing import CliRunner

from core.kernel.cli import main
from core.whitelabel.demo import DEMO_PAGE_PATH


async def _public_page(settings: Any) -> tuple[int, str, int]:
    from core.kernel.app import create_app

    app = create_app(settings)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        page = await client.get(DEMO_PAGE_PATH)
        body = await page.get_data(as_text=True)
        versions = await test_app.app.extensions["synergyhub"].db[
            "landing_page_versions"].count_documents({})
    return page.status_code, body, versions


def test_seed_demo_creates_tenants_users_and_a_published_page_once(
    synergyhub_stack: Any, synergyhub_settings: Any,
) -> None:
    database = f"demo_{uuid.uuid4().hex[:8]}"
    env = {"SYNERGYHUB_MONGODB_DATABASE": database}
    runner = CliRunner()

    first = runner.invoke(main, ["seed-demo"], env=env)
    assert first.exit_code == 0, first.output
    assert f"demo landing page published: {DEMO_PAGE_PATH}" in first.output
    again = runner.invoke(main, ["seed-demo"], env=env)
    assert again.exit_code == 0, again.output
    assert "left as it is" in again.output

    settings = synergyhub_settings.model_copy(update={"mongodb_database": database})
    status, body, versions = asyncio.run(_public_page(settings))
    assert status == 200
    assert "<h1" in body and "Northside Hospital" in body
    assert "<strong>demo tenant</strong>" in body  # rich_text kept, sanitized
    assert versions == 1  # the second run left the page alone
