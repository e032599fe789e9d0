"""The distribution imports only what other packages promise: no private ``_internal`` modules, no unused deps."""

from __future__ import annotations

import ast
from pathlib import Path

import tomllib
from support.crossbridge_target import REPO

SOURCES = [*sorted((REPO / "crossbridge_otel").rglob("*.py")), *sorted((REPO / "instrumentors").rglob("*.py"))]


def _imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_no_private_internal_module_of_another_package_is_imported():
    """An ``_internal`` module is a package's private implementation: it may move in any release."""
    offenders = [
        f"{path.relative_to(REPO)}: {name}"
        for path in SOURCES
        for name in _imported_modules(path)
        if not name.startswith("crossbridge_otel") and any(part.startswith("_internal") for part in name.split("."))
    ]
    assert offenders == []


def test_every_runtime_dependency_is_imported_by_the_distribution():
    """Each runtime dependency earns its place: some module of the distribution imports it."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    imported = {name.split(".")[0] for path in SOURCES for name in _imported_modules(path)}
    imported |= {  # distributions whose import name differs, or that are loaded by entry point, not imported
        "opentelemetry",
    }
    top_level = {
        "opentelemetry-api": "opentelemetry", "opentelemetry-sdk": "opentelemetry",
        "opentelemetry-exporter-otlp": "opentelemetry", "opentelemetry-instrumentation": "opentelemetry",
        "opentelemetry-instrumentation-psycopg2": "opentelemetry",
        "opentelemetry-instrumentation-threading": "opentelemetry", "backoff": "backoff", "wrapt": "wrapt",
    }
    unused = []
    for requirement in project["dependencies"]:
        name = requirement.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()
        if top_level.get(name, name.replace("-", "_")) not in imported:
            unused.append(name)
    assert unused == []
