"""Binds ``add`` with ``from ... import`` at import time, as CrossBridge modules do."""

from victims.shapes import add


def use() -> int:
    """Call the alias."""
    return add(1, 2)
