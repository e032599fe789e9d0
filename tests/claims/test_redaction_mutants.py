"""Redaction, each rule on its own input: kills the mutants of crossbridge_otel/redaction.py the wider tests let live.

Written against `bash tests/mutation/run.sh crossbridge_otel/redaction.py`: a credential-named key is recognised
(and an ordinary one is not), a bearer token keeps its scheme and loses its value, and ``redact_mapping`` masks
by key, redacts string values and leaves other values alone.
"""

from __future__ import annotations

from crossbridge_otel.redaction import MASK, is_secret_key, redact, redact_mapping


def test_credential_named_keys_are_secret() -> None:
    """Keys that name a credential are recognised, whatever their case or decoration."""
    for key in ("password", "DB_PASSWD", "api-key", "http.request.header.authorization", "X-Auth-Token", "cookie"):
        assert is_secret_key(key), key


def test_ordinary_keys_are_not_secret() -> None:
    """Keys that name no credential are not masked."""
    for key in ("user", "host", "db.statement", "http.request.method", "service.name"):
        assert not is_secret_key(key), key


def test_bearer_token_keeps_its_scheme() -> None:
    """A bearer token's value is masked and the scheme word before it is kept."""
    assert redact("Authorization failed for Bearer abc.DEF-123") == f"Authorization failed for Bearer {MASK}"


def test_basic_credentials_are_masked() -> None:
    """HTTP Basic credentials after the scheme word are masked."""
    assert redact("sent Basic dXNlcjpodW50ZXIy==") == f"sent Basic {MASK}"


def test_url_password_is_masked_and_user_kept() -> None:
    """A URL's password is masked and its user, host and path are kept."""
    assert redact("postgresql://app:hunter2@127.0.0.1:5432/db") == f"postgresql://app:{MASK}@127.0.0.1:5432/db"


def test_flag_value_is_masked() -> None:
    """A credential flag's value is masked in both the ``=`` and the spaced form."""
    expected = f"tool --token={MASK} --password {MASK} --user bob"
    assert redact("tool --token=abc --password hunter2 --user bob") == expected


def test_key_value_pair_keeps_quote_and_separator() -> None:
    """A credential ``key=value`` pair keeps its key, separator and opening quote."""
    assert redact("password='hunter2' user=bob") == f"password='{MASK}' user=bob"


def test_empty_text_is_returned_as_is() -> None:
    """Empty text is returned unchanged."""
    assert redact("") == ""


def test_mapping_masks_credential_keys() -> None:
    """A credential-named key's value is replaced by the mask, whatever its type."""
    assert redact_mapping({"api_key": 12345, "Password": "x"}) == {"api_key": MASK, "Password": MASK}


def test_mapping_redacts_string_values() -> None:
    """A string under an ordinary key is redacted, not masked whole."""
    clean = redact_mapping({"db.url": "postgresql://app:hunter2@db/x"})
    assert clean == {"db.url": f"postgresql://app:{MASK}@db/x"}


def test_mapping_keeps_other_values() -> None:
    """Non-string values under ordinary keys are kept as they are."""
    values = {"retries": 3, "ratio": 0.5, "flags": ("a", "b"), "none": None}
    assert redact_mapping(values) == values


def test_mapping_returns_a_copy() -> None:
    """The input mapping is never modified."""
    values = {"token": "abc"}
    assert redact_mapping(values) is not values and values == {"token": "abc"}
