"""The fault matrix runs once per session (all rows in parallel processes) and is printed at the end, pass or fail."""

from __future__ import annotations

import matrix  # noqa: E402
import pytest

_ran: dict[str, matrix.Outcome] = {}


@pytest.fixture(scope="session")
def outcomes() -> dict[str, matrix.Outcome]:
    """Every row of the matrix, run once (about a minute on two cores)."""
    if not _ran:
        _ran.update(matrix.run_matrix())
    return _ran


def pytest_terminal_summary(terminalreporter) -> None:
    if _ran:
        terminalreporter.section("fault matrix (issue 11)")
        terminalreporter.write_line(matrix.table(_ran))
        terminalreporter.write_line(
            "c=d+x: created = delivered to the collector + dropped and counted; points d/x: metric data points "
            "delivered / dropped; exit s: from the program's last statement to the process's end (budget: the plain "
            f"run's + {matrix.BUDGET_S} s); flush s: the exit flush (budget {matrix.EXPORT_TIMEOUT_S} s + 0.1 s); "
            "our lines: stderr lines the plain run does not print"
        )
