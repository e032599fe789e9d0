"""Self-test set-up: CrossBridge-shaped fixtures and tests/ on sys.path, PostgreSQL fixtures re-exported."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
for _p in (TESTS / "fixtures" / "crossbridge", TESTS):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from conftest_pg import postgres_db, postgres_server  # noqa: E402,F401  (pytest_plugins is root-only)
