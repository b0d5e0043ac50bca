"""The demo landing page of Northside Hospital, so `make run` shows a themed public page.

It is written through the public API (draft, then publish) by the demo account
admin, like a tenant would, so it is sanitized, versioned and audited. Once the
account has a draft or a published version the demo leaves the page alone: a
tenant's own edits are never overwritten (the draft is saved with
``base_revision: 0``, so even a draft saved meanwhile wins).
"""

from __future__ import annotations

from typing import Any

from core.kernel.settings import Settings
from core.tenancy.seed import NORTHSIDE

DEMO_PAGE_PATH = "/t/medical/northside"

DEMO_SECTIONS: list[dict[str, Any]] = [
    {"type": "hero", "title": "Northside Hospital",
     "subtitle": "Care teams that work as one, from admission to follow-up.",
     "cta_label": "Contact us", "cta_url": "mailto:care@northside.example"},
    {"type": "features", "title": "Why Northside",
     "items": [
         {"title": "Cardiology", "description": "A dedicated department with round-the-clock "
                                                "monitoring."},
         {"title": "Compliance built in", "description": "Policies, attestations and "
                                                         "sources of truth in one place."},
         {"title": "Assistants", "description": "Voice and chat assistants that answer from "
                                                "our own documents."},
     ]},
    {"type": "rich_text", "title": "About us",
     "html": "<p>Northside is a <strong>demo tenant</strong> of SynergyHub. Account admins edit "
             "this page with <code>PUT /api/v1/accounts/{id}/landing-page</code> and publish "
             "it; see <a href=\"https://example.org/docs\">the white-label guide</a>.</p>"},
    {"type": "faq", "title": "Questions",
     "items": [{"question": "Who can change this page?",
                "answer": "Account admins of Northside Hospital and the Solution's admins."}]},
    {"type": "cta", "title": "Visiting hours", "text": "Every day from 9:00 to 20:00.",
     "button_label": "Plan a visit", "button_url": "https://example.org/visit"},
]


async def publish_demo_page(settings: Settings, token: str) -> str:
    """Draft and publish the demo page unless the account has a page of its own."""
    from core.kernel.app import create_app

    app = create_app(settings)
    base = f"/api/v1/accounts/{NORTHSIDE}/landing-page"
    headers = {"Authorization": f"Bearer {token}"}
    async with app.test_app() as test_app:
        client = test_app.test_client()
        current = await client.get(base, headers=headers)
        if current.status_code != 200:
            raise RuntimeError(f"reading the landing page answered {current.status_code}")
        page = await current.get_json()
        if page["revision"] or page["published_version"] is not None:
            return f"demo landing page left as it is: {DEMO_PAGE_PATH}"
        draft = {"sections": DEMO_SECTIONS, "base_revision": 0}
        for method, path, body, expected in (("PUT", base, draft, 200),
                                             ("POST", f"{base}/publish", None, 201)):
            response = await client.open(path, method=method, json=body, headers=headers)
            if response.status_code != expected:
                raise RuntimeError(f"{method} {path} answered {response.status_code}: "
                                   f"{await response.get_data(as_text=True)}")
    return f"demo landing page published: {DEMO_PAGE_PATH}"
