"""The README stays true: its settings table is the settings table, its two commands are the scripts CI runs."""

from __future__ import annotations

import re
from pathlib import Path

from crossbridge_otel.settings import SETTINGS, render_markdown

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_settings_table_is_the_rendered_table():
    """The README's settings block is exactly what `crossbridge-otel settings` renders."""
    block = re.search(r"<!-- settings:begin[^>]*-->\n(.*?)\n<!-- settings:end -->", README, re.S)
    assert block is not None
    assert block.group(1) == render_markdown()
    assert all(f"`{s.env}`" in block.group(1) for s in SETTINGS)


def test_the_two_commands_exist_and_ci_runs_the_test_command():
    """The README names the demo and test scripts, which exist, and .ci/run runs the test command."""
    assert "`bash examples/run-demo.sh`" in README and "`bash tests/run.sh`" in README
    assert (REPO / "examples" / "run-demo.sh").is_file() and (REPO / "tests" / "run.sh").is_file()
    assert "tests/run.sh" in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_every_area_is_in_the_turning_off_table():
    """Each CrossBridge area's name has a row in "Turning areas off" (crossbridge_cli was missing)."""
    from crossbridge_otel.instrumentors.areas import AREAS

    points = [*AREAS, "crossbridge"]
    start = README.index("## Turning areas off")
    section = README[start:README.index("\n## ", start + 1)]
    missing = [name for name in points if f"| `{name}` |" not in section]
    assert missing == []


def test_the_readme_stands_alone():
    """No reference to files outside the repository (the TARGETS map CrossBridge's snapshot ships, section marks)."""
    assert "TARGETS" not in README and "§" not in README
