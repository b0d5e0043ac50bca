"""The kernel's reusable tenancy conformance check (core/testing/conformance.py) on studio:
every discovered studio route, every persona, every scope; prompts declared with their
item actions (render needs read, a new version needs write)."""

from __future__ import annotations

import pytest

from core.testing.conformance import Action, ResourceRoute, check_tenancy, scoped_body
from tests.integration.studio.conftest import Studio

pytestmark = pytest.mark.asyncio(loop_scope="session")

VARIABLES = [{"name": "name", "required": False, "default": "you"}]

PROMPTS = ResourceRoute(
    collection="/api/v1/accounts/{account_id}/studio/prompts",
    create_body=scoped_body({"title": "conformance", "template": "Hi {{ name }}",
                             "variables": VARIABLES}),
    update_body=lambda marker: {"title": marker},
    actions=(
        Action("post", "/render", "read", lambda: {"inputs": {"name": "x"}}),
        Action("post", "/versions", "write",
               lambda: {"template": "Hello {{ name }}", "variables": VARIABLES}),
        Action("post", "/tests", "write", lambda: {"name": "case", "inputs": {}}),
    ),
    name="studio prompts",
)


async def test_studio_passes_the_tenancy_conformance_check(studio: Studio) -> None:
    report = await check_tenancy(studio.test_app, studio.personas, plugin="studio",
                                 resources=[PROMPTS])
    report.assert_ok()
    assert report.routes, report.summary()
