"""The MongoDB client, opened inside the serving event loop.

pymongo's ``AsyncMongoClient`` binds to the loop of its first use, so it is
created in Quart's ``before_serving`` and closed in ``after_serving``.
"""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from core.kernel.settings import Settings

Document = dict[str, Any]


def open_client(settings: Settings) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(
        settings.mongodb_uri.get_secret_value(),
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        appname="synergyhub",
    )


async def ping(database: AsyncDatabase[Document]) -> None:
    await database.command("ping")
