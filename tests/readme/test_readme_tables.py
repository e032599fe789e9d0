"""The README's per-area tables cannot drift from the code: every span they name is a target patched on CrossBridge."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from support.crossbridge_target import REPO, crossbridge_env

README = (REPO / "README.md").read_text(encoding="utf-8")
#: spans that are not rows of a target table: the subprocess layer's child spans and the sidecar API's own span.
NOT_TARGETS = {"services.sidecar.request"}
COMMAND_CHILD = re.compile(r"^[a-z]+\.command$")


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def _expand(token: str) -> list[str]:
    """``a.{b,c}`` → ``a.b``, ``a.c``; ``a.record_{x,y}`` → ``a.record_x``, ``a.record_y``."""
    braces = re.search(r"\{([^}]*)\}", token)
    if braces is None:
        return [token]
    head, tail = token[: braces.start()], token[braces.end():]
    return [name for part in braces.group(1).split(",") for name in _expand(head + part.strip() + tail)]


def readme_span_names() -> list[str]:
    """Span names in the first column of every table row under "What is traced, per area"."""
    names: list[str] = []
    for line in _section("What is traced, per area").splitlines():
        if not line.startswith("| `") and not line.startswith("| counted: `"):
            continue
        first = line.split("|")[1]
        tokens = re.findall(r"`([^`]+)`", first)
        if tokens and tokens[0].endswith(" {model}"):  # a GenAI span, `chat {model}`: the AI table's `ai.chat` row
            names.append("ai." + tokens[0].split()[0])
            continue
        if not tokens or "." not in tokens[0]:
            continue
        parent = tokens[0].rsplit(".", 1)[0]
        for token in tokens:
            full = token if "." in token and token.split(".")[0] == tokens[0].split(".")[0] else f"{parent}.{token}"
            names.extend(_expand(full))
    return names


@pytest.fixture(scope="module")
def patched_spans() -> set[str]:
    env = {k: v for k, v in crossbridge_env().items() if not k.startswith(("OTEL_", "CROSSBRIDGE_OTEL_"))}
    env["OTEL_TRACES_EXPORTER"] = env["OTEL_METRICS_EXPORTER"] = env["OTEL_LOGS_EXPORTER"] = "none"
    done = subprocess.run(
        [sys.executable, "-m", "crossbridge_otel.cli", "doctor", "--json"],
        env=env, capture_output=True, text=True, timeout=180,
    )
    report = json.loads(done.stdout)
    # A target whose CrossBridge module itself cannot be imported (cypress_hook.py is a SyntaxError) is documented
    # as such in its row; anything else that is not patched (attribute missing, module missing) is drift.
    return {
        row["span"] for row in report["targets"]
        if row["state"] == "patched" or row["detail"].startswith("the module failed to import")
    }


def _matches(name: str, spans: set[str]) -> bool:
    if name in NOT_TARGETS or COMMAND_CHILD.match(name):
        return True
    if "<" in name or name.endswith(".*"):  # `coverage.repository.<method>`, `coverage.behavioral.*`
        prefix = re.split(r"<|\*", name)[0]
        return any(span.startswith(prefix) or span == prefix.rstrip(".") for span in spans)
    # a span opened per phase under its target (`orchestration.phase.validating` from `orchestration.phase`)
    return name in spans or any(name.startswith(span + ".") for span in spans)


def test_tables_name_spans():
    """The parser finds the tables' span names (so the next test is not vacuous)."""
    names = readme_span_names()
    assert len(names) > 60
    assert "coverage.parse" in names and "profiling.collector.record_test_end" in names and "ai.chat" in names


def test_every_span_in_the_tables_is_a_patched_target(patched_spans):
    """Each span a README table row names is the span of a target that is patched on the real CrossBridge."""
    drifted = sorted({name for name in readme_span_names() if not _matches(name, patched_spans)})
    assert drifted == []
