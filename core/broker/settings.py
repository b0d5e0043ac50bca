"""The broker's per-Solution policy (settings namespace ``broker``, Solution level only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.broker.counters import Limit
from core.kernel.errors import Forbidden
from core.tenancy.models import Principal

__all__ = ["NAMESPACE", "BrokerSettings", "check_broker_write"]

NAMESPACE = "broker"


class BrokerSettings(BaseModel):
    """Token lifetime ceiling and mint limits; the defaults are the platform level."""

    model_config = ConfigDict(extra="forbid")

    ttl_ceiling_seconds: int = Field(
        600, ge=10, le=7200, description="Longest lifetime of a minted token (seconds)."
    )
    account_per_minute: int = Field(60, ge=0, le=100_000,
                                     description="Mints per account per minute.")
    user_per_minute: int = Field(10, ge=0, le=10_000,
                                 description="Mints per user per account per minute.")
    account_per_day: int = Field(2_000, ge=0, le=10_000_000,
                                 description="Mints per account per UTC day.")
    user_per_day: int = Field(200, ge=0, le=1_000_000,
                              description="Mints per user per account per UTC day.")

    def limits(self) -> list[Limit]:
        return [
            Limit("minute", 60, self.account_per_minute, self.user_per_minute),
            Limit("day", 86_400, self.account_per_day, self.user_per_day),
        ]


def check_broker_write(principal: Principal, values: Mapping[str, Any],
                       defaults: BaseModel) -> None:
    """A SOLUTION_ADMIN may tighten the platform defaults; only a SUPERADMIN may loosen them.

    The platform pays the providers with its master keys, so raising a
    ceiling or quota above the platform default is the operator's call.
    """
    if principal.is_superadmin:
        return
    raised = sorted(key for key, value in values.items()
                    if isinstance(value, int) and value > getattr(defaults, key))
    if raised:
        limits = ", ".join(f"{key} (platform default {getattr(defaults, key)})"
                           for key in raised)
        raise Forbidden(f"Only a platform SUPERADMIN can raise these above the platform "
                        f"default: {limits}.", type_slug="limit-raise-forbidden")
