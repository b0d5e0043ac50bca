"""Live Assistant: real-time voice assistant over OpenAI Realtime."""
