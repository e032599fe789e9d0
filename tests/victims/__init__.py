"""Tiny patch victims for the engine tests (not CrossBridge-shaped: each one exists to exercise one shape)."""
