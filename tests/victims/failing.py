"""A module whose import fails with ImportError (a dependency CrossBridge lacks)."""

from victims import evidence

_error = ImportError("victims.failing needs a dependency that is not installed")
evidence.raised.append(_error)
raise _error
