"""Redaction of credentials before anything leaves the process.

Covers connection strings and URLs (``scheme://user:secret@host``), ``key=value`` / ``key: value`` pairs
whose key looks like a credential (password, token, secret, api key, authorization, ...), command-line
flags (``--password x``, ``--token=x``, ``-p x`` after ``psql``-style tools is not guessed), HTTP
``Authorization`` headers and bearer tokens, SQL password literals (``PASSWORD '...'``, ``IDENTIFIED BY '...'``).
The replacement is ``***``; structure is kept so a reader still sees what the string was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MASK", "is_secret_key", "redact", "redact_mapping"]

MASK = "***"

_KEY = (
    r"(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?"
    r"|auth(?:orization)?|session[_-]?id|cookie)"
)

_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<secret>[^@/\s]+)@")
_PAIR = re.compile(
    rf"(?P<key>\b[\w.\-]*{_KEY}['\"]?)(?P<sep>\s*[=:]\s*)(?P<quote>['\"]?)(?P<value>[^\s'\"&;,\])}}]+)",
    re.IGNORECASE,
)
_FLAG = re.compile(rf"(?P<flag>--?[\w\-]*{_KEY})(?P<sep>=|\s+)(?P<value>[^\s]+)", re.IGNORECASE)
_BEARER = re.compile(r"\b(?P<scheme>Bearer|Basic|Token)\s+(?P<value>[A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
_SQL_PASSWORD = re.compile(r"(?P<keyword>\b(?:PASSWORD|IDENTIFIED\s+BY)\s+)'(?:[^']|'')*'", re.IGNORECASE)
_SECRET_KEY = re.compile(_KEY, re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """True for an attribute or header name that holds a credential."""
    return _SECRET_KEY.search(key) is not None


def redact(text: str) -> str:
    """``text`` with every credential it contains replaced by ``***``."""
    if not text:
        return text
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _BEARER.sub(lambda m: f"{m['scheme']} {MASK}", text)
    text = _FLAG.sub(lambda m: f"{m['flag']}{m['sep']}{MASK}", text)
    text = _SQL_PASSWORD.sub(lambda m: f"{m['keyword']}'{MASK}'", text)
    return _PAIR.sub(lambda m: f"{m['key']}{m['sep']}{m['quote']}{MASK}", text)


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with credential-named keys masked and string values redacted."""
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if is_secret_key(key):
            clean[key] = MASK
        elif isinstance(value, str):
            clean[key] = redact(value)
        else:
            clean[key] = value
    return clean
