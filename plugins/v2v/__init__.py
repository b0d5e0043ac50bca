"""Voice to Voice: speech-to-speech sessions brokered with ephemeral OpenAI Realtime tokens."""
