"""Settings from the environment and from a secrets directory.

Secrets may be mounted as one file per secret (Cloud Run ``--set-secrets``):
point ``SYNERGYHUB_SECRETS_DIR`` at the folder and name each file like the
environment variable (``OPENAI_API_KEY``). Environment variables win over
files. Every problem is reported at once, in one error, at start-up.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

EMULATOR_VARIABLES = ("FIREBASE_AUTH_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")
DEV_PROJECT_ID = "demo-synergyhub"


def _env(name: str, *, prefixed: bool = True) -> Any:
    """Accept ``SYNERGYHUB_<NAME>`` and, for well-known names, the bare name."""
    names = [f"SYNERGYHUB_{name}", name] if prefixed else [name]
    return AliasChoices(*names)


class SettingsError(RuntimeError):
    """Start-up refused: lists every missing or invalid setting."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"SynergyHub cannot start; fix these settings:\n{listing}")


class Settings(BaseSettings):
    """All runtime configuration. ``docs/configuration.md`` documents each field."""

    model_config = SettingsConfigDict(
        extra="ignore",
        populate_by_name=True,
        case_sensitive=True,
    )

    environment: Literal["development", "test", "production"] = Field(
        "development", validation_alias=_env("ENV", prefixed=False)
    )
    # --- database -------------------------------------------------------
    mongodb_uri: SecretStr = Field(
        SecretStr("mongodb://127.0.0.1:27017/?directConnection=true"),
        validation_alias=AliasChoices("MONGODB_URI", "SYNERGYHUB_MONGODB_URI"),
    )
    mongodb_database: str = Field("synergyhub", validation_alias=_env("MONGODB_DATABASE"))
    # --- identity -------------------------------------------------------
    firebase_project_id: str = Field(
        DEV_PROJECT_ID,
        validation_alias=AliasChoices(
            "FIREBASE_PROJECT_ID", "SYNERGYHUB_FIREBASE_PROJECT_ID", "GOOGLE_CLOUD_PROJECT"
        ),
    )
    firebase_credentials_file: Path | None = Field(
        None,
        validation_alias=AliasChoices(
            "SYNERGYHUB_FIREBASE_CREDENTIALS_FILE", "GOOGLE_APPLICATION_CREDENTIALS"
        ),
    )
    firebase_auth_emulator_host: str | None = Field(
        None, validation_alias=AliasChoices("FIREBASE_AUTH_EMULATOR_HOST")
    )
    revocation_check_seconds: float = Field(
        30.0, ge=1, le=3600, validation_alias=_env("REVOCATION_CHECK_SECONDS")
    )
    # --- storage --------------------------------------------------------
    gcs_bucket: str = Field("synergyhub-dev", validation_alias=_env("GCS_BUCKET"))
    storage_emulator_host: str | None = Field(
        None, validation_alias=AliasChoices("STORAGE_EMULATOR_HOST")
    )
    gcs_signing_key_file: Path | None = Field(
        None, validation_alias=_env("GCS_SIGNING_KEY_FILE")
    )
    # --- AI providers ---------------------------------------------------
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY", "SYNERGYHUB_OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    openai_model: str = Field("gpt-4.1-mini", validation_alias=_env("OPENAI_MODEL"))
    liveavatar_api_key: SecretStr | None = Field(
        None, validation_alias=_env("LIVEAVATAR_API_KEY")
    )
    liveavatar_base_url: str = Field(
        "https://api.liveavatar.com", validation_alias=_env("LIVEAVATAR_BASE_URL")
    )
    heygen_api_key: SecretStr | None = Field(None, validation_alias=_env("HEYGEN_API_KEY"))
    heygen_base_url: str = Field(
        "https://api.heygen.com", validation_alias=_env("HEYGEN_BASE_URL")
    )
    # --- real time ------------------------------------------------------
    redis_url: SecretStr | None = Field(
        None, validation_alias=AliasChoices("REDIS_URL", "SYNERGYHUB_REDIS_URL")
    )
    # --- HTTP -----------------------------------------------------------
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("CORS_ORIGINS")
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, le=64 * 1_048_576, validation_alias=_env("MAX_BODY_BYTES")
    )
    platform_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1"],
        validation_alias=_env("PLATFORM_HOSTS"),
    )
    allow_solution_header: bool = Field(
        True, validation_alias=_env("ALLOW_SOLUTION_HEADER")
    )
    secret_key: SecretStr = Field(
        SecretStr("dev-only-secret-key-change-me"),
        validation_alias=AliasChoices("SYNERGYHUB_SECRET_KEY"),
    )
    themes_dir: Path | None = Field(
        None, validation_alias=_env("THEMES_DIR")
    )  # theme packs; default: the repository's themes/ folder
    # --- plugins --------------------------------------------------------
    hook_timeout_seconds: float = Field(
        5.0, gt=0, le=120, validation_alias=_env("HOOK_TIMEOUT_SECONDS")
    )
    load_entrypoint_plugins: bool = Field(
        True, validation_alias=_env("LOAD_ENTRYPOINT_PLUGINS")
    )
    # --- process --------------------------------------------------------
    bind: str = Field("127.0.0.1:8080", validation_alias=_env("BIND"))
    workers: int = Field(1, ge=1, le=64, validation_alias=_env("WORKERS"))
    log_level: str = Field("INFO", validation_alias=_env("LOG_LEVEL"))

    @field_validator("cors_origins", "platform_hosts", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        """Allow ``a,b,c`` in the environment as well as JSON lists."""
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def production_problems(self, environ: dict[str, str] | None = None) -> list[str]:
        """Why this configuration must not serve real users (empty when fine)."""
        environ = dict(os.environ) if environ is None else environ
        problems = [
            f"{name} is set: emulators must never reach a production process"
            for name in EMULATOR_VARIABLES
            if environ.get(name)
        ]
        if self.mongodb_uri.get_secret_value().startswith("mongodb://127.0.0.1"):
            problems.append("MONGODB_URI is missing (the development default points at localhost)")
        if self.firebase_project_id.startswith("demo-"):
            problems.append(
                "FIREBASE_PROJECT_ID is missing (a demo- project is for emulators only)"
            )
        if self.secret_key.get_secret_value() == "dev-only-secret-key-change-me":
            problems.append("SYNERGYHUB_SECRET_KEY is missing (still the development default)")
        elif len(self.secret_key.get_secret_value()) < 32:
            problems.append("SYNERGYHUB_SECRET_KEY must be at least 32 characters")
        if self.gcs_bucket == "synergyhub-dev":
            problems.append("SYNERGYHUB_GCS_BUCKET is missing (still the development bucket)")
        return problems


def load_settings(secrets_dir: Path | None = None, **overrides: Any) -> Settings:
    """Read settings; raise :class:`SettingsError` listing every problem at once."""
    if secrets_dir is None and os.environ.get("SYNERGYHUB_SECRETS_DIR"):
        secrets_dir = Path(os.environ["SYNERGYHUB_SECRETS_DIR"])
    if secrets_dir is not None and not secrets_dir.is_dir():
        raise SettingsError([f"SYNERGYHUB_SECRETS_DIR={secrets_dir} is not a directory"])
    try:
        return Settings(_secrets_dir=secrets_dir, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            problems.append(f"{where}: {error['msg']}")
        raise SettingsError(problems) from None
