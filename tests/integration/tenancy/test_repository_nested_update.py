"""Updates of nested model fields are stored as plain data and load back."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from core.tenancy.directory import principal_from
from core.tenancy.models import AccountContext, Scope, ScopedResource

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Usage(BaseModel):
    tokens: int = 0


class Metered(ScopedResource):
    collection: ClassVar[str] = "test_nested_update"
    usage: Usage = Usage()


async def test_update_with_nested_model_field(synergyhub_services: Any, personas: Any) -> None:
    db = synergyhub_services.db
    user = await db["users"].find_one({"_id": personas["ACCOUNT_ADMIN"].uid})
    found = await synergyhub_services.tenancy.directory.account_with_solution(
        personas.home_account)
    ctx = AccountContext(principal=principal_from(user), solution=found[1], account=found[0])
    repo = synergyhub_services.tenancy.repositories.bind(Metered, ctx)
    item = await repo.insert({}, scope=Scope.ACCOUNT)
    updated = await repo.update(item.id, {"usage": {"tokens": 42}})
    assert updated.usage == Usage(tokens=42)
    assert (await repo.get(item.id)).usage.tokens == 42
