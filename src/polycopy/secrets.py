"""Live-mode credentials: from the environment or a credentials file only, never YAML (R31).

Sources, first match wins:
1. `POLYCOPY_PRIVATE_KEY` — hex, with or without `0x`;
2. `POLYCOPY_PRIVATE_KEY_FILE` — a file readable by its owner only (mode 0600 or stricter);
3. `$CREDENTIALS_DIRECTORY/polymarket_private_key` — systemd `LoadCredential=`.
`POLYCOPY_WALLET` names the funder wallet when it is not the signer's own address.

Only live mode calls `load_credentials`. The key is held as a `SecretStr`; no message, log
line or exception raised here ever contains it: it is registered with the process-wide log
redaction (`observability.logging`), and `scrub` cleans venue error texts before they are
raised or stored. `redact_secrets` is the same scrub as a structlog processor.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from polycopy.config import ConfigError
from polycopy.observability import logging as log_redaction

_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
CREDENTIAL_NAME = "polymarket_private_key"
UNIT_PLACEHOLDER = "missing"  # the unit's SetCredential= stand-in when no key file exists
REDACTED = "**********"

_loaded: set[str] = set()  # exact secret values to scrub from logs


class SecretsError(ConfigError):
    """Credentials are missing, malformed or stored unsafely: refuse to start (exit 78)."""

    def __init__(self, problem: str) -> None:
        super().__init__([problem])


@dataclass(frozen=True, slots=True)
class Credentials:
    private_key: SecretStr  # 0x-prefixed hex
    wallet: str | None  # the funder; None: the signer's own address (a plain EOA)
    source: str  # where the key came from (never the key)

    def __repr__(self) -> str:
        return (
            f"Credentials(private_key={REDACTED}, wallet={self.wallet!r}, source={self.source!r})"
        )


def load_credentials(environ: Mapping[str, str] | None = None) -> Credentials:
    env = os.environ if environ is None else environ
    if env.get("POLYCOPY_PRIVATE_KEY"):
        raw, source = env["POLYCOPY_PRIVATE_KEY"], "POLYCOPY_PRIVATE_KEY"
    elif env.get("POLYCOPY_PRIVATE_KEY_FILE"):
        path = Path(env["POLYCOPY_PRIVATE_KEY_FILE"])
        raw, source = _read_key_file(path, "POLYCOPY_PRIVATE_KEY_FILE"), str(path)
    elif env.get("CREDENTIALS_DIRECTORY"):
        path = Path(env["CREDENTIALS_DIRECTORY"]) / CREDENTIAL_NAME
        raw, source = _read_key_file(path, "CREDENTIALS_DIRECTORY"), str(path)
    else:
        raise SecretsError(
            "live mode needs a private key: set POLYCOPY_PRIVATE_KEY, POLYCOPY_PRIVATE_KEY_FILE "
            f"or systemd LoadCredential={CREDENTIAL_NAME}"
        )
    key = raw.strip()
    if not key or key == UNIT_PLACEHOLDER:
        raise SecretsError(f"{source}: no private key was provided (live mode needs one)")
    if not _KEY_RE.match(key):
        raise SecretsError(f"{source}: not a 32-byte hex private key")
    if not key.startswith("0x"):
        key = "0x" + key
    register_secret(key)
    wallet = env.get("POLYCOPY_WALLET") or None
    if wallet is not None and not _ADDRESS_RE.match(wallet):
        raise SecretsError("POLYCOPY_WALLET: not a 0x-prefixed 40-hex-digit address")
    return Credentials(SecretStr(key), wallet, source)


def _read_key_file(path: Path, where: str) -> str:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SecretsError(f"{where}: {path} does not exist") from None
    except OSError as exc:
        raise SecretsError(f"{where}: cannot read {path} ({exc.strerror})") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(
            f"{where}: {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); chmod 600 it"
        )
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SecretsError(f"{where}: cannot read {path} ({exc.strerror})") from None


def register_secret(value: str) -> None:
    """Scrub this value (and its 0x-less form) from error messages and from every log line
    (the process-wide structlog redaction of `observability.logging`)."""
    if value:
        _loaded.add(value)
        _loaded.add(value.removeprefix("0x"))
        log_redaction.register_secret(value)


def scrub(text: str) -> str:
    """`text` with every loaded secret replaced (order hashes and other public ids kept)."""
    for secret in sorted(_loaded, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: replace every loaded secret value found in the event."""
    if not _loaded:
        return event_dict
    for key, value in list(event_dict.items()):
        if isinstance(value, str):
            event_dict[key] = scrub(value)
        elif not isinstance(value, int | float | bool) and value is not None:
            text = str(value)
            cleaned = scrub(text)
            if cleaned != text:
                event_dict[key] = cleaned
    return event_dict
