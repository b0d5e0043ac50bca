"""Break-glass impersonation: a SUPERADMIN acts as a user, audited and time-boxed.

A session is started with a reason and a duration (at most an hour) and is
read-only unless write was granted explicitly. Requests carry the session id
in ``X-Impersonation``; every audit event they cause names the impersonator.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from core.kernel.errors import Forbidden, NotFound, Unprocessable
from core.tenancy.models import Principal, new_id, utcnow

HEADER = "X-Impersonation"
MAX_MINUTES = 60


class Impersonation:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = database

    async def start(
        self, actor: Principal, *, uid: str, reason: str, minutes: int, write: bool
    ) -> dict[str, Any]:
        if not actor.is_superadmin or actor.impersonator:
            raise Forbidden("Only a SUPERADMIN may impersonate.")
        if len(reason.strip()) < 10:
            raise Unprocessable("A reason of at least 10 characters is required.")
        if not 1 <= minutes <= MAX_MINUTES:
            raise Unprocessable(f"minutes must be between 1 and {MAX_MINUTES}.")
        if await self.db["users"].find_one({"_id": uid}, projection={"_id": 1}) is None:
            raise NotFound("No such user.")
        session = {
            "_id": new_id(),
            "impersonator": actor.uid,
            "uid": uid,
            "reason": reason.strip(),
            "write": write,
            "started_at": utcnow(),
            "expires_at": utcnow() + timedelta(minutes=minutes),
        }
        await self.db["impersonations"].insert_one(session)
        return session

    async def apply(self, principal: Principal, headers: Mapping[str, str]) -> Principal:
        """Swap in the impersonated user when a valid session header is present."""
        session_id = headers.get(HEADER)
        if not session_id:
            return principal
        if not principal.is_superadmin:
            raise Forbidden("Only a SUPERADMIN may impersonate.")
        session = await self.db["impersonations"].find_one(
            {"_id": session_id[:64], "impersonator": principal.uid}
        )
        if session is None or session["expires_at"] <= utcnow():
            raise Forbidden("The impersonation session is unknown or has expired.")
        from core.tenancy.directory import principal_from

        target = await self.db["users"].find_one({"_id": session["uid"]})
        if target is None:
            raise NotFound("No such user.")
        return principal_from(target).model_copy(
            update={"impersonator": principal.uid, "read_only": not session["write"]}
        )
