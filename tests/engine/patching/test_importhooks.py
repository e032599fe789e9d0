"""Post-import hooks: when they fire, cancelling them, and containing their failures."""

from __future__ import annotations

import importlib
import sys

import pytest

from crossbridge_otel import _guard
from crossbridge_otel.patching import importhooks as hooks


def test_hook_fires_when_module_is_imported():
    """A hook for a module not yet imported runs once, with the module, right after its import."""
    seen = []
    hook = hooks.when_imported("victims.partner", seen.append)
    assert hook is not None and seen == []
    import victims.partner

    assert seen == [victims.partner]
    assert "victims.partner" not in hooks.pending_modules()


def test_hook_fires_at_once_for_an_imported_module():
    """A hook for a module already in sys.modules runs immediately and nothing stays pending."""
    import victims.partner

    seen = []
    assert hooks.when_imported("victims.partner", seen.append) is None
    assert seen == [victims.partner]


def test_cancelled_hook_never_fires():
    """cancel() drops a pending hook, so the later import does not run it."""
    seen = []
    hook = hooks.when_imported("victims.partner", seen.append)
    assert hooks.cancel(hook) is True
    importlib.import_module("victims.partner")
    assert seen == []
    assert hooks.cancel(hook) is False


def test_failing_hook_never_breaks_the_import(lenient):
    """An exception inside a hook is contained and counted; the application's import succeeds."""

    def broken(module):
        raise RuntimeError("hook bug")

    hooks.when_imported("victims.partner", broken)
    module = importlib.import_module("victims.partner")
    assert module.ping() == "pong"
    assert _guard.contained_failures()["post-import hook for victims.partner"] == 1


def test_import_failure_reaches_on_error_and_the_importer_unchanged():
    """A module failing to import gives on_error and the importer the very same exception object."""
    from victims import evidence

    errors = []
    hooks.when_imported("victims.failing", lambda m: pytest.fail("fired"), errors.append)
    with pytest.raises(ImportError) as caught:
        import victims.failing  # noqa: F401
    assert caught.value is evidence.raised[-1]
    assert errors == [caught.value]
    assert "victims.failing" not in sys.modules
