"""The ephemeral-token broker: short-lived provider credentials for browsers, never a master key."""
