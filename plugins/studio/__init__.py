"""Prompt Studio: versioned prompts, test cases and runs through the AI gateway."""
