"""Fixtures for the real-pipeline tests: binaries built once per machine (cached outside the repo), then a
Jaeger and a collector per test, each on free 127.0.0.1 ports, with their logs shown when a test fails."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline  # noqa: E402
from support.crossbridge_target import ci  # noqa: E402

BUILD_TIMEOUT_S = float(os.environ.get("CROSSBRIDGE_PIPELINE_BUILD_TIMEOUT", "3600"))
GO_MISSING = (
    "Go toolchain not found: the real collector and Jaeger cannot be built; install Go >= 1.22 "
    "(https://go.dev/dl/; ocb v0.161.0 needs Go 1.26, which Go >= 1.21 downloads by itself) and the tests build "
    "them with tests/e2e/build-pipeline.sh"
)


def _in_ci() -> bool:
    return ci()


@pytest.fixture(scope="session")
def pipeline_binaries(tmp_path_factory: pytest.TempPathFactory) -> pipeline.Binaries:
    """The collector and Jaeger binaries; builds them on first use (cold: 10-25 min, then cached).

    Without Go: skip locally, fail in CI (CI=true), where the pipeline tests must always run."""
    try:
        return pipeline.find_binaries(build=False)
    except pipeline.PipelineError:
        pass
    if not pipeline.go_available():
        if _in_ci():
            pytest.fail(GO_MISSING + " (CI=true: not skipping)")
        pytest.skip(GO_MISSING)
    log = tmp_path_factory.mktemp("build") / "build-pipeline.log"
    try:
        return pipeline.find_binaries(build=True, timeout=BUILD_TIMEOUT_S, log_path=log)
    except pipeline.PipelineError as exc:
        pytest.fail(f"building the pipeline failed: {exc}")


@pytest.fixture
def jaeger(pipeline_binaries: pipeline.Binaries, tmp_path: Path) -> Iterator[pipeline.Jaeger]:
    j = pipeline.Jaeger(pipeline_binaries.jaeger, workdir=tmp_path / "jaeger")
    j.start()
    try:
        j.wait_ready(timeout=60)
        yield j
    finally:
        j.stop()


@pytest.fixture
def collector(pipeline_binaries: pipeline.Binaries, tmp_path: Path) -> Iterator[pipeline.Collector]:
    """A Collector object for the repository's collector-config.yaml, NOT started (tests choose the env)."""
    c = pipeline.Collector(pipeline_binaries.otelcol, workdir=tmp_path / "otelcol")
    try:
        yield c
    finally:
        c.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On a failed test, attach the log of every pipeline process it used (while they are still alive)."""
    rep = yield
    if rep.failed and rep.when in ("setup", "call"):
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, pipeline._Process) and value.proc is not None:
                rep.sections.append((f"{value.name} log", value.describe()))
    return rep
