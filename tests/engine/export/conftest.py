"""The local-file and summary tests read a real run's output file, as the view tests do."""

from support.view import demo_file, large_file  # noqa: F401  (fixtures, requested by name)
