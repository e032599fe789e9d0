"""A pytest plugin for bench_suite.py's profiling round: where the instrumented run's added time goes.

Loaded into CrossBridge's own test run (``-p suite_profile_plugin``, its directory on ``PYTHONPATH``) only in the
extra profiling round, never in the timed rounds, and never into the distribution itself. With
``SUITE_PROFILE_JSON=PATH`` it writes at the end of the session:

- per instrumented callable (span name): calls and the time spent in our wrapper around the callable,
  excluding the callable itself (the hook times the installed wrapper and, inside it, the original; its own
  cost, calibrated at start, is subtracted);
- the same two figures as CPU time of the calling thread (``time.thread_time``), which a loaded machine's
  preemption does not inflate;
- per callable also the added time of its first call (lazy set-up such as the SDK providers built on first use
  lands on whichever call comes first, so it is told apart from the steady per-call cost);
- the log bridge: records handled by ``BridgeHandler.handle``, the time spent there, the first record's share
  and the slowest record;
- child processes started (``subprocess``: how many, how many run Python) and forks;
- CPU time of the main thread's process (``RUSAGE_SELF``), its children (``RUSAGE_CHILDREN``), and the
  distribution's own threads (export workers), read from ``/proc/self/task``.

In the plain run only the process counters and CPU figures are collected (nothing of ours is loaded there).
It reaches into private methods of the engine (``CrossBridgeInstrumentor._wrap``); when they move it says so in
the JSON (``hook``) instead of failing the run.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections import defaultdict
from typing import Any

_perf = time.perf_counter
_cpu = time.thread_time  # CPU of the calling thread: on a loaded machine wall intervals include preemption
_out = os.environ.get("SUITE_PROFILE_JSON")
_calls: dict[str, int] = defaultdict(int)
_outer: dict[str, float] = defaultdict(float)
_inner: dict[str, float] = defaultdict(float)
_outer_cpu: dict[str, float] = defaultdict(float)
_inner_cpu: dict[str, float] = defaultdict(float)
_first: dict[str, float] = {}  # added time of each callable's first call (lazy set-up lands there)
_untimed: dict[str, int] = defaultdict(int)  # wrapped, but not a plain function: counted only via spans
_logs = {"records": 0, "seconds": 0.0, "cpu_seconds": 0.0, "first_seconds": 0.0, "max_seconds": 0.0}
_procs: dict[str, Any] = {"popen": 0, "python": 0, "forks": 0, "commands": defaultdict(int)}
_hook = {"wrap": "not installed", "logs": "not installed"}
_calibration = {"seconds_per_call": 0.0, "cpu_seconds_per_call": 0.0}


def _noop() -> None:
    return None


def _timed_pair(raw: Any, name: str) -> tuple[Any, Any]:
    """(timed original, function that wraps the installed wrapper) for a plain function ``raw``."""

    @functools.wraps(raw)
    def timed_raw(*args: Any, **kwargs: Any) -> Any:
        started, started_cpu = _perf(), _cpu()
        try:
            return raw(*args, **kwargs)
        finally:
            _inner_cpu[name] += _cpu() - started_cpu
            _inner[name] += _perf() - started

    def outer_of(installed: Any) -> Any:
        @functools.wraps(raw)
        def timed_installed(*args: Any, **kwargs: Any) -> Any:
            inner_before = _inner[name]
            started, started_cpu = _perf(), _cpu()
            try:
                return installed(*args, **kwargs)
            finally:
                outer = _perf() - started
                _outer_cpu[name] += _cpu() - started_cpu
                _outer[name] += outer
                _calls[name] += 1
                if name not in _first:
                    _first[name] = outer - (_inner[name] - inner_before)

        for attr in ("__crossbridge_otel_original__",):
            if hasattr(installed, attr):
                setattr(timed_installed, attr, getattr(installed, attr))
        return timed_installed

    return timed_raw, outer_of


def _plain(func: Any) -> bool:
    return (inspect.isfunction(func) and not inspect.isgeneratorfunction(func)
            and not inspect.iscoroutinefunction(func) and not inspect.isasyncgenfunction(func))


def _install_wrap_hook() -> None:
    try:
        from crossbridge_otel.patching.instrumentor import CrossBridgeInstrumentor
    except Exception as exc:  # the engine moved: say so
        _hook["wrap"] = f"unavailable: {exc!r}"
        return
    original_wrap = getattr(CrossBridgeInstrumentor, "_wrap", None)
    if original_wrap is None:
        _hook["wrap"] = "unavailable: CrossBridgeInstrumentor._wrap is gone"
        return

    def _wrap(self: Any, raw: Any, target: Any, on_class: bool = False) -> Any:
        name = str(getattr(target, "span", None) or getattr(target, "qualname", "?"))
        kind = type(raw) if isinstance(raw, (staticmethod, classmethod)) else None
        func = raw.__func__ if kind is not None else raw
        if not _plain(func):
            _untimed[name] += 1
            return original_wrap(self, raw, target, on_class)
        timed_raw, outer_of = _timed_pair(func, name)
        installed = original_wrap(self, kind(timed_raw) if kind else timed_raw, target, on_class)
        inner = installed.__func__ if isinstance(installed, (staticmethod, classmethod)) else installed
        if not callable(inner) or isinstance(inner, type):
            return installed
        timed = outer_of(inner)
        if isinstance(installed, (staticmethod, classmethod)):
            return type(installed)(timed)
        return timed

    CrossBridgeInstrumentor._wrap = _wrap
    _hook["wrap"] = "installed"


def _install_log_hook() -> None:
    try:
        from crossbridge_otel.logs.handler import BridgeHandler
    except Exception as exc:
        _hook["logs"] = f"unavailable: {exc!r}"
        return
    handle = BridgeHandler.handle

    def timed_handle(self: Any, record: Any) -> Any:
        started, started_cpu = _perf(), _cpu()
        try:
            return handle(self, record)
        finally:
            _logs["cpu_seconds"] += _cpu() - started_cpu
            spent = _perf() - started
            _logs["seconds"] += spent
            _logs["max_seconds"] = max(_logs["max_seconds"], spent)
            if not _logs["records"]:
                _logs["first_seconds"] = spent
            _logs["records"] += 1

    BridgeHandler.handle = timed_handle  # type: ignore[method-assign]
    _hook["logs"] = "installed"


def _install_process_hooks() -> None:
    execute = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def counted(self: Any, args: Any, *rest: Any, **kwargs: Any) -> Any:
        argv = [args] if isinstance(args, (str, bytes)) else list(args)
        head = os.path.basename(str(argv[0])) if argv else "?"
        _procs["popen"] += 1
        _procs["commands"][head] += 1
        if "python" in head or (argv and str(argv[0]) == sys.executable):
            _procs["python"] += 1
        return execute(self, args, *rest, **kwargs)

    subprocess.Popen._execute_child = counted  # type: ignore[attr-defined]
    os.register_at_fork(before=lambda: _procs.__setitem__("forks", _procs["forks"] + 1))


def _calibrate() -> None:
    """The hook's own cost per call (two timed frames around a no-op), subtracted from the added time."""
    timed_raw, outer_of = _timed_pair(_noop, "__calibration__")
    timed = outer_of(timed_raw)
    rounds, cpu_rounds = [], []
    for _ in range(5):
        started, started_cpu = _perf(), _cpu()
        for _ in range(20_000):
            timed()
        hooked, hooked_cpu = _perf() - started, _cpu() - started_cpu
        started, started_cpu = _perf(), _cpu()
        for _ in range(20_000):
            _noop()
        rounds.append((hooked - (_perf() - started)) / 20_000)
        cpu_rounds.append((hooked_cpu - (_cpu() - started_cpu)) / 20_000)
    rounds.sort()
    cpu_rounds.sort()
    # timed_installed's frame is outside the outer-minus-inner difference; timed_raw's is inside: about half
    _calibration["seconds_per_call"] = rounds[len(rounds) // 2] / 2
    _calibration["cpu_seconds_per_call"] = cpu_rounds[len(cpu_rounds) // 2] / 2
    for table in (_calls, _outer, _inner, _first, _outer_cpu, _inner_cpu):
        table.pop("__calibration__", None)


def _our_threads_cpu() -> dict[str, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.native_id is None:
            continue
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[thread.name] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def _install() -> None:
    # At import (``-p`` plugins load before CrossBridge's conftest imports anything it would patch).
    _install_process_hooks()
    if "crossbridge_otel" in sys.modules:  # only under opentelemetry-instrument
        _calibrate()
        _install_wrap_hook()
        _install_log_hook()


if _out:
    _install()


def pytest_unconfigure(config: Any) -> None:
    if not _out:
        return
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    per_call, per_call_cpu = _calibration["seconds_per_call"], _calibration["cpu_seconds_per_call"]
    callables = {
        name: {"calls": _calls[name],
               "added_seconds": max(0.0, _outer[name] - _inner[name] - per_call * _calls[name]),
               "first_added_seconds": max(0.0, _first.get(name, 0.0) - per_call),
               "added_cpu_seconds": max(0.0, _outer_cpu[name] - _inner_cpu[name] - per_call_cpu * _calls[name]),
               "inner_seconds": _inner[name]}
        for name in _calls
    }
    report = {
        "hook": _hook,
        "calibration_seconds_per_call": per_call,
        "callables": callables,
        "untimed_targets": dict(_untimed),
        "logs": _logs,
        "processes": {**_procs, "commands": dict(_procs["commands"])},
        "cpu": {"self": own.ru_utime + own.ru_stime, "children": kids.ru_utime + kids.ru_stime,
                "threads": _our_threads_cpu()},
    }
    with open(_out, "w") as out:
        json.dump(report, out, indent=1)
