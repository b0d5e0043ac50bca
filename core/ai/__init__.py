"""AI kernel services: the chat gateway, JSON extraction and ephemeral tokens.

Adapters in the sense of ARCHITECTURE §2: this package is where ``openai``
and outbound HTTP to AI providers live, so plugins never import them.
"""

from core.ai.clients import OpenAIClientPool
from core.ai.errors import AIError, AIOutputError, AIUnavailable, AIUpstreamError
from core.ai.gateway import AIGateway, AIProviderConfig, ChatResult, ChatStream, Usage
from core.ai.json_extract import extract_json
from core.ai.tokens import (
    HeyGenLegacyProvider,
    LiveAvatarProvider,
    MintedToken,
    MintRequest,
    OpenAIRealtimeProvider,
    OpenAITranscriptionProvider,
    ProviderClients,
    ProviderCredentials,
    TokenProvider,
)
from core.ai.usage import InMemoryUsageMeter, UsageMeter, UsageRecord

__all__ = [
    "AIError",
    "AIGateway",
    "AIOutputError",
    "AIProviderConfig",
    "AIUnavailable",
    "AIUpstreamError",
    "ChatResult",
    "ChatStream",
    "HeyGenLegacyProvider",
    "InMemoryUsageMeter",
    "LiveAvatarProvider",
    "MintRequest",
    "MintedToken",
    "OpenAIClientPool",
    "OpenAIRealtimeProvider",
    "OpenAITranscriptionProvider",
    "ProviderClients",
    "ProviderCredentials",
    "TokenProvider",
    "Usage",
    "UsageMeter",
    "UsageRecord",
    "extract_json",
]
