"""The audit tests instrument whole areas, as the instrumentor tests do."""

from support.areas import _clean_state, instrument  # noqa: F401  (fixtures, requested by name)
