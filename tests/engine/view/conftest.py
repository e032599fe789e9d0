"""Fixtures of the view tests: a real run's local output file and a large synthetic one (see support.view)."""

from support.view import demo_file, large_file  # noqa: F401  (fixtures, requested by name)
