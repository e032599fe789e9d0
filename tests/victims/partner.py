"""A healthy module next to the failing ones: its target must still be patched."""


def ping() -> str:
    """Answer pong."""
    return "pong"
