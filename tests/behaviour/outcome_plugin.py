"""A pytest plugin loaded into CrossBridge's own test run (``-p outcome_plugin --outcomes-json=PATH``).

It records one outcome per test node id and writes them as JSON at the end of the session:
``passed``, ``failed``, ``skipped``, ``error`` (setup failed), ``xfailed``, ``xpassed``, ``collection error``,
with `` + teardown error`` appended when teardown failed after the test. Exact node ids, unlike junitxml's
class-and-name pairs, so parametrized tests and tests with equal names in different files stay apart.

It is copied into a directory of its own that is put on the child's ``PYTHONPATH`` (so nothing else of this
repository is importable there); it never runs inside this project's own pytest session.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

_outcomes: dict[str, str] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--outcomes-json", default=None, help="write {nodeid: outcome} as JSON to this file")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _outcomes[report.nodeid] = "collection error"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    nodeid = report.nodeid
    if report.when == "setup":
        if report.failed:
            _outcomes[nodeid] = "error"
        elif report.skipped:
            _outcomes[nodeid] = "xfailed" if hasattr(report, "wasxfail") else "skipped"
    elif report.when == "call":
        if hasattr(report, "wasxfail"):
            _outcomes[nodeid] = "xfailed" if report.skipped else "xpassed"
        else:
            _outcomes[nodeid] = report.outcome
    elif report.when == "teardown" and report.failed:
        _outcomes[nodeid] = _outcomes.get(nodeid, "passed") + " + teardown error"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption("--outcomes-json")
    if path:
        Path(path).write_text(json.dumps({"exitstatus": int(exitstatus), "outcomes": _outcomes}, indent=1))
