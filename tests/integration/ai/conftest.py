"""Fixtures for the AI integration tests: one FakeAIServer per module, reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from core.ai.gateway import AIProviderConfig
from core.testing.fake_ai import FakeAIServer

PINNED_MODEL = "gpt-pinned-for-tests"


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeAIServer]:
    with FakeAIServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeAIServer) -> Iterator[FakeAIServer]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture
def config(fake: FakeAIServer) -> AIProviderConfig:
    return AIProviderConfig(
        base_url=fake.openai_base_url,
        api_key=SecretStr(fake.openai_key),
        default_model=PINNED_MODEL,
        timeout_seconds=5,
        max_retries=0,
    )
