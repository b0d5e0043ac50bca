"""Solution-level settings (defaults are the platform level of the cascade)."""

from pydantic import BaseModel, ConfigDict, Field


class SolutionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, max_length=100, description="Chat model override.")
    top_k: int = Field(5, ge=1, le=10,
                       description="How many indexed chunks ground one answer.")
