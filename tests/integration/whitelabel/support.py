"""Shared pieces of the white-label tests: an assets plugin, a tiny PNG, helpers.

``AssetsPlugin`` is a real feature plugin (registered in code): it ships a
logo and a favicon through ``register_theme_assets`` (served under
``/static/plugins/wlprobe/``) and a ``badge`` landing section through
``register_landing_sections``.
"""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.hooks import PluginManifest, ThemeAssets, hookimpl
from core.whitelabel import SectionType

PLUGIN = "wlprobe"
LOGO_RGB = (200, 30, 90)
NONCE_RE = re.compile(r'nonce="([^"]+)"')


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG, written by hand (no imaging library needed)."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


class BadgeSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["badge"] = "badge"
    anchor: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]{0,63}$")
    label: str = Field(min_length=1, max_length=80)


class AssetsPlugin:
    def __init__(self, root: Path) -> None:
        self.static = root / "static"
        self.templates = root / "templates"
        (self.templates / "sections").mkdir(parents=True, exist_ok=True)
        self.static.mkdir(parents=True, exist_ok=True)
        (self.static / "logo.png").write_bytes(png(48, 24, LOGO_RGB))
        (self.static / "favicon.png").write_bytes(png(16, 16, (10, 90, 120)))
        (self.templates / "sections" / "badge.html.j2").write_text(
            '<section class="section badge"><div class="container">'
            '<p class="badge__label">{{ section.label }}</p></div></section>\n'
        )

    @hookimpl
    def plugin_manifest(self) -> PluginManifest:
        return PluginManifest(name=PLUGIN, version="1.0", title="White-label probe")

    @hookimpl
    def register_theme_assets(self) -> ThemeAssets:
        return ThemeAssets(static_dir=self.static, templates_dir=self.templates)

    @hookimpl
    def register_landing_sections(self) -> list[SectionType]:
        return [SectionType("badge", BadgeSection, "sections/badge.html.j2")]


def without_nonce(html: str) -> str:
    return NONCE_RE.sub('nonce="N"', html)


async def new_account(client: Any, personas: Any, *, tenant: int = 0) -> tuple[str, str, str]:
    """A fresh account (id, account slug, solution slug) created by the SUPERADMIN."""
    t = personas.tenants[tenant]
    slug = f"wl-{uuid.uuid4().hex[:10]}"
    response = await client.post(f"/api/v1/solutions/{t.solution_id}/accounts",
                                 json={"slug": slug, "name": f"Tenant {slug}"},
                                 headers=personas["SUPERADMIN"].headers())
    assert response.status_code == 201, await response.get_data(as_text=True)
    return (await response.get_json())["id"], slug, t.solution_slug


HERO = {"type": "hero", "title": "Welcome", "subtitle": "Care close to home"}


async def publish_page(client: Any, account_id: str, headers: dict[str, str],
                       sections: list[dict[str, Any]]) -> dict[str, Any]:
    response = await client.put(f"/api/v1/accounts/{account_id}/landing-page",
                                json={"sections": sections}, headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    response = await client.post(f"/api/v1/accounts/{account_id}/landing-page/publish",
                                 headers=headers)
    assert response.status_code == 201, await response.get_data(as_text=True)
    body: dict[str, Any] = await response.get_json()
    return body
