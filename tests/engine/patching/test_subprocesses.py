"""crossbridge_otel.patching.subprocesses: command spans and TRACEPARENT for children of crossbridge-otel spans."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from opentelemetry.trace import StatusCode

from crossbridge_otel.patching import subprocesses
from crossbridge_otel.settings import load as load_settings

CHILD_PRINTS_TRACEPARENT = [sys.executable, "-c", "import os; print(os.environ.get('TRACEPARENT', ''))"]


@pytest.fixture
def subprocess_patch(telemetry):
    """subprocess patched with the test's tracer provider; restored afterwards."""
    original_run, original_init = subprocess.run, subprocess.Popen.__init__
    assert subprocesses.acquire(tracer_provider=telemetry.tracer_provider)
    yield telemetry
    subprocesses.release()
    assert subprocess.run is original_run and subprocess.Popen.__init__ is original_init


def _ours(telemetry, area="coverage"):
    """A recording span from a crossbridge_otel tracer carrying ``crossbridge.area``."""
    tracer = telemetry.tracer_provider.get_tracer("crossbridge_otel.testarea")
    return tracer.start_as_current_span(f"{area}.operation", attributes={"crossbridge.area": area,
                                                                        "crossbridge.category": "testing"})


def test_command_span_is_child_of_current_span(subprocess_patch):
    """subprocess.run under one of our spans opens `<area>.command` as its child with exit code 0."""
    with _ours(subprocess_patch) as parent:
        result = subprocess.run("true", shell=True, timeout=30)
    assert result.returncode == 0
    span = subprocess_patch.span("coverage.command")
    assert span.parent.span_id == parent.get_span_context().span_id
    assert span.attributes["process.exit.code"] == 0
    assert span.attributes["crossbridge.command.shell"] is True
    assert span.attributes["crossbridge.command.timeout_s"] == 30.0
    assert span.attributes["crossbridge.area"] == "coverage"
    assert span.status.status_code == StatusCode.UNSET


def test_list_command_is_joined(subprocess_patch):
    """A list of arguments is recorded as one command line string."""
    with _ours(subprocess_patch, area="execution"):
        subprocess.run([sys.executable, "-c", "pass"])
    span = subprocess_patch.span("execution.command")
    assert span.attributes["process.command_line"] == f"{sys.executable} -c pass"
    assert span.attributes["crossbridge.command.shell"] is False


def test_password_in_command_is_redacted(subprocess_patch):
    """A password on the command line never reaches the span."""
    with _ours(subprocess_patch):
        subprocess.run("echo --password hunter2 postgresql://bob:s3cret@db/x >/dev/null", shell=True)
    line = subprocess_patch.span("coverage.command").attributes["process.command_line"]
    assert "hunter2" not in line and "s3cret" not in line
    assert "--password ***" in line


def test_nonzero_exit_is_error_with_stderr_tail(subprocess_patch):
    """A non-zero exit marks the span ERROR `nonzero_exit` and returns the same CompletedProcess."""
    with _ours(subprocess_patch):
        result = subprocess.run("echo boom >&2; exit 3", shell=True, capture_output=True, text=True)
    assert result.returncode == 3 and result.stderr.strip() == "boom"
    span = subprocess_patch.span("coverage.command")
    assert span.attributes["process.exit.code"] == 3
    assert span.attributes["error.type"] == "nonzero_exit"
    assert span.status.status_code == StatusCode.ERROR
    assert "code 3" in span.status.description and "boom" in span.status.description


def test_timeout_is_recorded_and_reraised(subprocess_patch):
    """TimeoutExpired is recorded on the span and the same exception reaches the caller."""
    with _ours(subprocess_patch), pytest.raises(subprocess.TimeoutExpired) as caught:
        subprocess.run("sleep 5", shell=True, timeout=0.3)
    span = subprocess_patch.span("coverage.command")
    assert span.attributes["error.type"] == "subprocess.TimeoutExpired"
    assert span.status.status_code == StatusCode.ERROR
    assert span.events[0].name == "exception"
    assert caught.value.cmd == "sleep 5"
    assert span.events[0].attributes["exception.type"] == "subprocess.TimeoutExpired"


def test_traceparent_reaches_child_process(subprocess_patch):
    """A child process sees TRACEPARENT carrying the trace id of the command span."""
    with _ours(subprocess_patch) as parent:
        result = subprocess.run(CHILD_PRINTS_TRACEPARENT, capture_output=True, text=True)
    traceparent = result.stdout.strip()
    trace_id = format(parent.get_span_context().trace_id, "032x")
    command = subprocess_patch.span("coverage.command")
    assert traceparent.split("-")[1] == trace_id
    assert traceparent.split("-")[2] == format(command.context.span_id, "016x")


def test_explicit_env_is_copied_not_mutated(subprocess_patch):
    """An explicit env mapping gets TRACEPARENT in a copy; the caller's dict is untouched."""
    env = {"PATH": os.environ.get("PATH", ""), "KEEP": "1"}
    with _ours(subprocess_patch):
        code = "import os; print(os.environ['KEEP'], 'TRACEPARENT' in os.environ)"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout
    assert out.split() == ["1", "True"]
    assert "TRACEPARENT" not in env


def test_popen_outside_our_spans_is_untouched(subprocess_patch):
    """Outside crossbridge-otel spans there is no span and no TRACEPARENT (other tracers don't count)."""
    foreign = subprocess_patch.tracer_provider.get_tracer("someone.else")
    env = {k: v for k, v in os.environ.items() if k not in ("TRACEPARENT", "TRACESTATE")}
    # Even a foreign span carrying our attributes is not ours: only the tracer's scope decides
    with foreign.start_as_current_span("app", attributes={"crossbridge.area": "coverage"}):
        out = subprocess.run(CHILD_PRINTS_TRACEPARENT, env=env, capture_output=True, text=True).stdout
    assert out.strip() == ""
    assert [s.name for s in subprocess_patch.spans() if s.name.endswith(".command")] == []
    assert [s.name for s in subprocess_patch.spans()] == ["app"]


def test_refcount_restores_only_on_last_release(telemetry):
    """Two acquires need two releases before subprocess is restored exactly."""
    original_run = subprocess.run
    subprocesses.acquire(tracer_provider=telemetry.tracer_provider)
    subprocesses.acquire(tracer_provider=telemetry.tracer_provider)
    try:
        subprocesses.release()
        assert subprocess.run is not original_run and subprocesses.active()
    finally:
        subprocesses.release()
    assert subprocess.run is original_run and not subprocesses.active()


def test_setting_off_patches_nothing(telemetry):
    """subprocess_spans=false leaves subprocess alone."""
    original_run = subprocess.run
    settings = load_settings(environ={}, subprocess_spans=False)
    try:
        assert subprocesses.acquire(tracer_provider=telemetry.tracer_provider, settings=settings) is False
        assert subprocess.run is original_run
    finally:
        subprocesses.release()
    assert subprocess.run is original_run


def test_wrappers_keep_names(subprocess_patch):
    """The patched callables keep their names and point at the originals."""
    assert subprocess.run.__name__ == "run"
    assert subprocess.Popen.__init__.__name__ == "__init__"
    assert subprocess.run.__wrapped__ is not None
