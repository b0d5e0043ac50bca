"""Solution-level settings: the realtime session is pinned server-side from these."""

from pydantic import BaseModel, ConfigDict, Field


class SolutionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field("gpt-realtime", max_length=100)
    voice: str = Field("alloy", max_length=40)
    instructions: str = Field(
        "You are a helpful, concise voice assistant.", max_length=4000
    )
