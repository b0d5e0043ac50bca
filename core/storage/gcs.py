"""Google Cloud Storage adapter of the storage port (google-cloud-storage).

The SDK is synchronous: every call runs in a worker thread
(``asyncio.to_thread``) with a bounded timeout and retry budget, and SDK or
transport errors become a 503 problem, never a 500.

Signing V4 URLs needs a private key. In order of preference:

1. ``SYNERGYHUB_GCS_SIGNING_KEY_FILE`` — a service-account JSON key;
2. development and tests against the emulator — a throwaway RSA key made at
   start-up (fake-gcs-server accepts signed URLs without checking them);
3. production without a key file — IAM ``signBlob`` with the runtime's
   credentials (the service account needs ``iam.serviceAccounts.signBlob`` on
   itself, e.g. roles/iam.serviceAccountTokenCreator). Not exercised by the
   test suite (it needs Google's IAM service).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import google.auth.exceptions
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import Request as AuthRequest
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account

from core.kernel.settings import Settings
from core.storage.port import (
    ObjectMissing,
    SignedUrl,
    StorageService,
    StorageUnavailable,
    StoredObject,
)

log = logging.getLogger("synergyhub.storage")
T = TypeVar("T")

# Where a throwaway key says its tokens come from; never contacted (we only sign).
_UNUSED_TOKEN_URI = "http://127.0.0.1:9/token"


def throwaway_key_info(project_id: str) -> dict[str, str]:
    """A fresh service-account key (RSA 2048) for emulators: it signs, it grants nothing."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": "throwaway",
        "private_key": pem,
        "client_email": f"url-signer@{project_id}.iam.gserviceaccount.com",
        "client_id": "0",
        "token_uri": _UNUSED_TOKEN_URI,
    }


def load_signer(path: Path) -> service_account.Credentials:
    """Read a service-account key file; the error never quotes the file's content."""
    try:
        signer: service_account.Credentials = (
            service_account.Credentials.from_service_account_file(str(path))  # type: ignore[no-untyped-call]
        )
        return signer
    except (OSError, ValueError, KeyError) as exc:
        raise StorageUnavailable(
            f"SYNERGYHUB_GCS_SIGNING_KEY_FILE ({path}) is not a readable service-account "
            f"key ({type(exc).__name__})."
        ) from None


class GCSStorage(StorageService):
    """One bucket on Google Cloud Storage or on fake-gcs-server."""

    def __init__(
        self,
        *,
        bucket: str,
        project: str,
        emulator_host: str | None = None,
        signer: service_account.Credentials | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.bucket = bucket
        self._project = project
        self._emulator = emulator_host.rstrip("/") if emulator_host else None
        self._signer = signer
        self._timeout = timeout
        self._retry = DEFAULT_RETRY.with_timeout(timeout)
        self._lock = threading.Lock()
        self._client_or_none: storage.Client | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> GCSStorage | None:
        """The adapter these settings describe, or None when storage is not configured
        (development without the emulator): routes then answer 503 saying what to set."""
        emulator = settings.storage_emulator_host
        if emulator and settings.is_production:
            emulator = None  # `serve` refuses this anyway; never sign with a throwaway key
        signer: service_account.Credentials | None = None
        if settings.gcs_signing_key_file is not None:
            signer = load_signer(settings.gcs_signing_key_file)
        elif emulator:
            signer = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                throwaway_key_info(settings.firebase_project_id)
            )
        elif not settings.is_production:
            return None
        return cls(bucket=settings.gcs_bucket, project=settings.firebase_project_id,
                   emulator_host=emulator, signer=signer)

    # -- plumbing -----------------------------------------------------------

    def _client(self) -> storage.Client:
        with self._lock:
            if self._client_or_none is None:
                if self._emulator:
                    self._client_or_none = storage.Client(
                        project=self._project,
                        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                        client_options=ClientOptions(api_endpoint=self._emulator),
                    )
                else:
                    self._client_or_none = storage.Client(project=self._project)
            return self._client_or_none

    def _bucket(self) -> storage.Bucket:
        return self._client().bucket(self.bucket)

    async def _run(self, work: Callable[[], T]) -> T:
        """Run a blocking SDK call in a thread; transport and API errors become 503."""
        try:
            return await asyncio.to_thread(work)
        except StorageUnavailable:
            raise
        except (
            api_exceptions.GoogleAPIError,
            google.auth.exceptions.GoogleAuthError,
            requests.RequestException,
            OSError,
        ) as exc:
            log.warning("storage call failed", extra={"error_type": type(exc).__name__})
            raise StorageUnavailable(
                "Object storage is not reachable right now; try again shortly."
            ) from None

    def _signing_kwargs(self) -> dict[str, Any]:
        if self._signer is not None:
            return {"credentials": self._signer}
        # IAM signBlob with the runtime's own (e.g. Cloud Run) credentials.
        credentials = self._client()._credentials
        if not credentials.valid:
            credentials.refresh(AuthRequest())
        email = getattr(credentials, "service_account_email", None)
        if not email or email == "default":
            raise StorageUnavailable(
                "Signed URLs need a signing identity: set SYNERGYHUB_GCS_SIGNING_KEY_FILE or run "
                "as a service account allowed to call signBlob on itself."
            )
        return {"service_account_email": email, "access_token": credentials.token}

    # -- the port -----------------------------------------------------------

    async def signed_upload(
        self, name: str, *, content_type: str, size: int, ttl: timedelta
    ) -> SignedUrl:
        headers = {
            # GCS refuses a body of any other length ...
            "x-goog-content-length-range": f"{size},{size}",
            # ... and any second PUT to the same name (no overwrite after verification).
            "x-goog-if-generation-match": "0",
        }

        def sign() -> str:
            url: str = self._bucket().blob(name).generate_signed_url(
                version="v4", expiration=ttl, method="PUT", content_type=content_type,
                headers=dict(headers), **self._signing_kwargs(),  # the SDK adds Host
            )
            return url

        url = await self._run(sign)
        return SignedUrl(url=url, method="PUT", headers={"Content-Type": content_type, **headers},
                         expires_at=datetime.now(UTC) + ttl)

    async def signed_download(
        self,
        name: str,
        *,
        ttl: timedelta,
        disposition: str,
        content_type: str,
        generation: int | None = None,
    ) -> SignedUrl:
        def sign() -> str:
            url: str = self._bucket().blob(name).generate_signed_url(
                version="v4", expiration=ttl, method="GET", response_disposition=disposition,
                response_type=content_type, generation=generation, **self._signing_kwargs(),
            )
            return url

        url = await self._run(sign)
        return SignedUrl(url=url, method="GET", headers={}, expires_at=datetime.now(UTC) + ttl)

    async def stat(self, name: str) -> StoredObject | None:
        def work() -> StoredObject | None:
            blob = self._bucket().get_blob(name, timeout=self._timeout, retry=self._retry)
            if blob is None:
                return None
            return StoredObject(name=name, size=int(blob.size or 0),
                                content_type=blob.content_type,
                                generation=int(blob.generation or 0))

        return await self._run(work)

    async def read(
        self, name: str, *, start: int, length: int, generation: int | None = None
    ) -> bytes:
        if length <= 0:
            return b""

        def work() -> bytes:
            blob = self._bucket().blob(name, generation=generation)
            try:
                data: bytes = blob.download_as_bytes(
                    start=start, end=start + length - 1, checksum=None,
                    timeout=self._timeout, retry=self._retry,
                )
            except api_exceptions.NotFound:
                raise ObjectMissing("No such file.") from None
            return data

        return await self._run(work)

    async def delete(self, name: str) -> None:
        def work() -> None:
            try:
                self._bucket().delete_blob(name, timeout=self._timeout, retry=self._retry)
            except api_exceptions.NotFound:
                pass

        await self._run(work)

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix.endswith("/") or prefix.startswith("/") or prefix.count("/") < 2:
            raise ValueError(f"refusing to delete under {prefix!r}")

        def work() -> int:
            removed = 0
            for blob in self._client().list_blobs(self.bucket, prefix=prefix,
                                                  timeout=self._timeout, retry=self._retry):
                try:
                    blob.delete(timeout=self._timeout, retry=self._retry)
                    removed += 1
                except api_exceptions.NotFound:
                    pass
            return removed

        return await self._run(work)

    async def ensure_bucket(self) -> None:
        """Create the bucket when missing: for the emulator only (production buckets
        are provisioned with their CORS, retention and lifecycle rules)."""
        if not self._emulator:
            return

        def work() -> None:
            client = self._client()
            if client.lookup_bucket(self.bucket, timeout=self._timeout) is None:
                try:
                    client.create_bucket(self.bucket, timeout=self._timeout)
                except api_exceptions.Conflict:
                    pass  # another worker made it first

        await self._run(work)

    async def close(self) -> None:
        client = self._client_or_none
        self._client_or_none = None
        if client is not None:
            await asyncio.to_thread(client.close)
