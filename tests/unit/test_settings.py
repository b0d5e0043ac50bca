"""Settings: environment, secret files, one error listing every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.kernel.settings import SettingsError, load_settings

PRODUCTION_ENV = {
    "MONGODB_URI": "mongodb+srv://cluster.example.net/app",
    "FIREBASE_PROJECT_ID": "acme-prod",
    "SYNERGYHUB_SECRET_KEY": "k" * 40,
    "SYNERGYHUB_GCS_BUCKET": "acme-files",
}


def test_secret_files_are_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "OPENAI_API_KEY").write_text("sk-from-file")
    (tmp_path / "MONGODB_URI").write_text("mongodb://from-file:27017")
    monkeypatch.setenv("MONGODB_URI", "mongodb://from-env:27017")
    settings = load_settings(secrets_dir=tmp_path)
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == "sk-from-file"
    assert settings.mongodb_uri.get_secret_value() == "mongodb://from-env:27017"
    assert "sk-from-file" not in repr(settings)


def test_every_invalid_setting_is_listed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNERGYHUB_WORKERS", "many")
    monkeypatch.setenv("SYNERGYHUB_MAX_BODY_BYTES", "1")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    text = str(caught.value)
    assert "SYNERGYHUB_WORKERS" in text and "SYNERGYHUB_MAX_BODY_BYTES" in text
    assert len(caught.value.problems) == 2


def test_missing_secrets_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not a directory"):
        load_settings(secrets_dir=tmp_path / "nope")


def test_csv_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNERGYHUB_CORS_ORIGINS", "https://a.example, https://b.example")
    assert load_settings().cors_origins == ["https://a.example", "https://b.example"]


def test_production_problems_name_emulators_and_defaults() -> None:
    settings = load_settings()
    problems = settings.production_problems({"FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099"})
    assert any("FIREBASE_AUTH_EMULATOR_HOST" in p for p in problems)
    assert any("MONGODB_URI" in p for p in problems)


def test_production_configuration_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(key, value)
    assert load_settings().production_problems({}) == []
