"""The app-scoped service container (the composition root fills it in).

A small explicit container instead of a DI framework: the object graph is
shallow, everything app-scoped is created in one place (``create_app``) and
request-scoped values (principal, account context, repositories) are derived
per request by :mod:`core.kernel.context`. See docs/decisions.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from core.kernel.plugins import PluginRegistry
from core.kernel.settings import Settings

if TYPE_CHECKING:
    from core.kernel.database import Document
    from core.tenancy.wiring import TenancyServices


class NotServing(RuntimeError):
    """A service that exists only while the app is serving was used too early."""


@dataclass
class Services:
    """Everything app-scoped. Plugins receive it in ``startup``/``shutdown`` hooks."""

    settings: Settings
    plugins: PluginRegistry
    extras: dict[str, Any] = field(default_factory=dict)
    _mongo: AsyncMongoClient[Document] | None = None
    _http: httpx.AsyncClient | None = None
    tenancy_or_none: TenancyServices | None = None
    # Filled by kernel plugins in their ``startup`` hook (None until serving).
    ai: Any = None  # core.ai gateway + usage meter
    storage: Any = None  # core.storage service (signed URLs)
    broker: Any = None  # core.broker ephemeral-token broker
    realtime: Any = None  # core.realtime Socket.IO server facade
    whitelabel: Any = None  # core.whitelabel services (themes, landing pages)

    @property
    def tenancy(self) -> TenancyServices:
        if self.tenancy_or_none is None:
            raise NotServing("tenancy services are opened when the app starts serving")
        return self.tenancy_or_none

    @tenancy.setter
    def tenancy(self, value: TenancyServices | None) -> None:
        self.tenancy_or_none = value

    @property
    def mongo(self) -> AsyncMongoClient[Document]:
        if self._mongo is None:
            raise NotServing("the database client is opened when the app starts serving")
        return self._mongo

    @property
    def db(self) -> AsyncDatabase[Document]:
        return self.mongo[self.settings.mongodb_database]

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise NotServing("the outbound HTTP client is opened when the app starts serving")
        return self._http
