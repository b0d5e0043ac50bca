"""Firebase identity: verify ID tokens off the event loop, revocation bounded in time.

``verify_id_token(check_revoked=True)`` costs a network round trip on every
call. Instead the verifier checks signature and expiry per request (cached for
the token's lifetime, it is pure CPU) and asks Firebase whether the user is
disabled or its tokens revoked at most once per ``revocation_check_seconds``
per user and process. That bounds how long a revoked user keeps access.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import firebase_admin
from firebase_admin import auth as firebase_auth

from core.kernel.errors import Unauthenticated
from core.kernel.settings import Settings

_TOKEN_CACHE_SIZE = 10_000


def normalize_email(email: str) -> str:
    """NFKC then case-fold, so look-alike spellings meet on one key."""
    return unicodedata.normalize("NFKC", email).strip().casefold()


@dataclass(frozen=True)
class VerifiedToken:
    uid: str
    email: str | None
    issued_at: float
    expires_at: float


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> VerifiedToken: ...


@dataclass
class _UserState:
    checked_at: float
    disabled: bool
    valid_after: float


class FirebaseTokenVerifier:
    """Verifies Firebase ID tokens for one project (the token's audience)."""

    def __init__(self, settings: Settings) -> None:
        self.project_id = settings.firebase_project_id
        self.window = settings.revocation_check_seconds
        self.emulated = bool(settings.firebase_auth_emulator_host)
        name = f"synergyhub-{self.project_id}-{id(self)}"
        credential = None
        if settings.firebase_credentials_file:
            credential = firebase_admin.credentials.Certificate(
                str(settings.firebase_credentials_file)
            )
        elif self.emulated:
            credential = _EmulatorCredential()
        self.app = firebase_admin.initialize_app(
            credential, options={"projectId": self.project_id}, name=name
        )
        self._tokens: OrderedDict[str, VerifiedToken] = OrderedDict()
        self._users: dict[str, _UserState] = {}

    def close(self) -> None:
        firebase_admin.delete_app(self.app)

    async def verify(self, token: str) -> VerifiedToken:
        if not token or len(token) > 8192:
            raise Unauthenticated("A bearer token is required.", type_slug="invalid-token")
        key = hashlib.sha256(token.encode()).hexdigest()
        verified = self._tokens.get(key)
        if verified is None:
            verified = await asyncio.to_thread(self._verify_signature, token)
            self._tokens[key] = verified
            if len(self._tokens) > _TOKEN_CACHE_SIZE:
                self._tokens.popitem(last=False)
        if verified.expires_at <= time.time():
            self._tokens.pop(key, None)
            raise Unauthenticated("The token has expired.", type_slug="token-expired")
        await self._check_revocation(verified)
        return verified

    def _verify_signature(self, token: str) -> VerifiedToken:
        try:
            claims: dict[str, Any] = firebase_auth.verify_id_token(
                token, app=self.app, check_revoked=False, clock_skew_seconds=5
            )
        except Exception:
            raise Unauthenticated(
                "The token could not be verified.", type_slug="invalid-token"
            ) from None
        # The emulator skips signature and expiry checks; audience we check always.
        if claims.get("aud") != self.project_id:
            raise Unauthenticated("The token is for another project.", type_slug="invalid-token")
        return VerifiedToken(
            uid=str(claims["uid"]),
            email=claims.get("email"),
            issued_at=float(claims.get("auth_time") or claims.get("iat") or 0),
            expires_at=float(claims.get("exp") or 0),
        )

    async def _check_revocation(self, verified: VerifiedToken) -> None:
        state = self._users.get(verified.uid)
        now = time.monotonic()
        if state is None or now - state.checked_at >= self.window:
            state = await asyncio.to_thread(self._fetch_user_state, verified.uid)
            self._users[verified.uid] = state
        if state.disabled:
            raise Unauthenticated("This user is disabled.", type_slug="user-disabled")
        if verified.issued_at < state.valid_after:
            raise Unauthenticated("The token has been revoked.", type_slug="token-revoked")

    def _fetch_user_state(self, uid: str) -> _UserState:
        try:
            record = firebase_auth.get_user(uid, app=self.app)
        except firebase_auth.UserNotFoundError:
            return _UserState(time.monotonic(), disabled=True, valid_after=0)
        valid_after_ms = record.tokens_valid_after_timestamp or 0
        return _UserState(time.monotonic(), bool(record.disabled), valid_after_ms / 1000)


class _EmulatorCredential(firebase_admin.credentials.Base):  # type: ignore[misc]
    """Credentials for the Auth emulator, which accepts any bearer ("owner")."""

    def get_credential(self) -> Any:
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()  # type: ignore[no-untyped-call]
