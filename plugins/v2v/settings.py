"""Solution-level settings: the realtime session is pinned server-side from these."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

ProviderName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]


class SolutionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field("gpt-realtime", max_length=100)
    voice: str = Field("alloy", max_length=40)
    instructions: str = Field(
        "You are a helpful, concise voice assistant.", max_length=4000
    )
    # Pinned into ephemeral-token sessions by the broker (core/broker, docs/ai.md).
    tools: list[dict[str, Any]] = Field(default_factory=list, max_length=32)
    transcription_model: str = Field("gpt-4o-transcribe", max_length=100)
    language: str | None = Field(None, max_length=16)
    token_providers: list[ProviderName] = Field(
        default_factory=lambda: ["openai-realtime", "openai-transcription"], max_length=10
    )
