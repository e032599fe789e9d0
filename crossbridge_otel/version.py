"""The distribution's version (kept in step with pyproject.toml)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
