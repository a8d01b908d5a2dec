"""What the agent calls: image providers, moderation, scoring, prompt composition."""
