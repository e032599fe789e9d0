"""The resource of TELEMETRY.md, per process.

``service.name`` is ``crossbridge`` unless ``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES`` says
otherwise; ``telemetry.distro.*`` name this distribution; ``crossbridge.version`` is read from installed
package metadata without importing CrossBridge; ``process.pid`` and ``service.instance.id`` belong to the
process that exports, so a forked worker gets its own (:class:`ProcessResource`).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import platform
import sys
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource

from crossbridge_otel.version import __version__

__all__ = ["ProcessResource", "build_resource", "crossbridge_version"]

_CROSSBRIDGE_PACKAGES = {"core", "adapters", "services", "cli", "persistence"}


def crossbridge_version() -> str | None:
    """The installed CrossBridge's version, if its distribution is CrossBridge (not the unrelated namesake)."""
    for name in ("crossbridge", "crossbridge-ai"):
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        top_level = set((dist.read_text("top_level.txt") or "").split())
        if not top_level:
            top_level = {str(f).split("/", 1)[0] for f in (dist.files or [])}
        if top_level & _CROSSBRIDGE_PACKAGES:
            return dist.version
    return None


def _process_attributes() -> dict[str, Any]:
    return {
        "process.pid": os.getpid(),
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": platform.python_version(),
        "process.runtime.description": sys.version.replace("\n", " "),
        "service.instance.id": str(uuid.uuid4()),
    }


def build_resource() -> Resource:
    """The resource for the current process (reads ``OTEL_*`` resource variables)."""
    attributes: dict[str, Any] = {
        "telemetry.distro.name": "crossbridge-otel",
        "telemetry.distro.version": __version__,
        **_process_attributes(),
    }
    version = crossbridge_version()
    if version:
        attributes["crossbridge.version"] = version
    resource = Resource.create(attributes)
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "crossbridge"}))
    return resource


class ProcessResource:
    """The parent's resource, and after ``fork`` the child's, with its own pid and instance id.

    The SDK's TracerProvider replaces its resource object in a forked child (it merges process-dependent
    detectors), so a span is re-labelled by what it says (a ``process.pid`` that is not this process's),
    not by the identity of the resource object it carries.
    """

    def __init__(self, resource: Resource) -> None:
        self.parent = resource
        self._pid = os.getpid()
        self._child_pid = 0
        self._child_attributes: dict[str, Any] = {}
        self._relabelled: dict[int, tuple[Resource, Resource]] = {}
        self._lock = threading.Lock()

    def _for_this_process(self, resource: Resource) -> Resource:
        pid = os.getpid()
        if resource.attributes.get("process.pid") == pid:
            return resource
        with self._lock:
            if self._child_pid != pid:
                self._child_pid = pid
                self._child_attributes = _process_attributes()
                self._relabelled = {}
            cached = self._relabelled.get(id(resource))
            if cached is None or cached[0] is not resource:
                cached = (resource, resource.merge(Resource(self._child_attributes)))
                self._relabelled[id(resource)] = cached
            return cached[1]

    def current(self) -> Resource:
        if os.getpid() == self._pid:
            return self.parent
        return self._for_this_process(self.parent)

    def relabel_spans(self, batch: Sequence[Any]) -> Sequence[Any]:
        if os.getpid() == self._pid:
            return batch
        for span in batch:
            resource = getattr(span, "_resource", None)
            if resource is not None:
                span._resource = self._for_this_process(resource)
        return batch

    def relabel_logs(self, batch: Sequence[Any]) -> Sequence[Any]:
        if os.getpid() == self._pid:
            return batch
        return [dataclasses.replace(r, resource=self._for_this_process(r.resource)) for r in batch]

    def relabel_metrics(self, data: Any) -> Any:
        """``MetricsData`` with each resource re-labelled for this process (after fork)."""
        if os.getpid() == self._pid:
            return data
        return dataclasses.replace(data, resource_metrics=[
            dataclasses.replace(rm, resource=self._for_this_process(rm.resource)) for rm in data.resource_metrics
        ])
