"""R31: the private key comes from the environment or an owner-only file, is held as a
SecretStr, and never appears in a message, a repr or a log line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import structlog
from eth_account import Account

from polycopy.secrets import (
    REDACTED,
    UNIT_PLACEHOLDER,
    SecretsError,
    load_credentials,
    redact_secrets,
)


@pytest.fixture
def canary() -> str:
    return "0x" + bytes(Account.create().key).hex()


def test_key_from_environment(canary: str) -> None:
    creds = load_credentials({"POLYCOPY_PRIVATE_KEY": canary[2:]})
    assert creds.private_key.get_secret_value() == canary
    assert canary not in repr(creds)
    assert canary[2:] not in repr(creds)
    assert creds.wallet is None
    assert creds.source == "POLYCOPY_PRIVATE_KEY"


def test_key_file_must_be_owner_only(tmp_path: Path, canary: str) -> None:
    path = tmp_path / "key"
    path.write_text(canary + "\n")
    os.chmod(path, 0o644)
    with pytest.raises(SecretsError, match="group or others") as refused:
        load_credentials({"POLYCOPY_PRIVATE_KEY_FILE": str(path)})
    assert canary not in str(refused.value)
    os.chmod(path, 0o600)
    creds = load_credentials(
        {"POLYCOPY_PRIVATE_KEY_FILE": str(path), "POLYCOPY_WALLET": "0x" + "ab" * 20}
    )
    assert creds.private_key.get_secret_value() == canary
    assert creds.wallet == "0x" + "ab" * 20


def test_systemd_credentials_directory(tmp_path: Path, canary: str) -> None:
    path = tmp_path / "polymarket_private_key"
    path.write_text(canary)
    os.chmod(path, 0o400)
    creds = load_credentials({"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert creds.private_key.get_secret_value() == canary


def test_the_units_placeholder_credential_is_refused_clearly(tmp_path: Path) -> None:
    """Without /etc/polycopy/private_key the unit's SetCredential= placeholder stands in
    (so a paper service starts); a live daemon refuses it, saying what is missing."""
    unit = (Path(__file__).resolve().parents[3] / "systemd" / "polycopy.service").read_text()
    assert f"SetCredential=polymarket_private_key:{UNIT_PLACEHOLDER}\n" in unit
    path = tmp_path / "polymarket_private_key"
    path.write_text(UNIT_PLACEHOLDER)
    os.chmod(path, 0o400)
    with pytest.raises(SecretsError, match="no private key was provided"):
        load_credentials({"CREDENTIALS_DIRECTORY": str(tmp_path)})


def test_missing_or_malformed_keys_are_refused_without_echo(canary: str) -> None:
    with pytest.raises(SecretsError, match="needs a private key"):
        load_credentials({})
    broken = canary[:-1] + "z"
    with pytest.raises(SecretsError) as refused:
        load_credentials({"POLYCOPY_PRIVATE_KEY": broken})
    assert broken not in str(refused.value)
    assert broken[2:40] not in str(refused.value)
    with pytest.raises(SecretsError, match="POLYCOPY_WALLET"):
        load_credentials({"POLYCOPY_PRIVATE_KEY": canary, "POLYCOPY_WALLET": "nope"})


def test_log_processor_scrubs_loaded_secrets(canary: str) -> None:
    load_credentials({"POLYCOPY_PRIVATE_KEY": canary})
    with structlog.testing.capture_logs(processors=[redact_secrets]) as logs:
        structlog.get_logger().error("oops", detail=f"bad key {canary}", raw=[canary[2:]])
    rendered = repr(logs)
    assert canary not in rendered
    assert canary[2:] not in rendered
    assert REDACTED in rendered
