"""CLOB authentication as the venue checks it.

L1 (wallet): an EIP-712 `ClobAuth` signature in `POLY_ADDRESS/POLY_SIGNATURE/POLY_TIMESTAMP/
POLY_NONCE`, used to create or derive API credentials. L2 (API key): `POLY_ADDRESS`,
`POLY_API_KEY`, `POLY_PASSPHRASE`, `POLY_TIMESTAMP` and `POLY_SIGNATURE` = base64url(HMAC-SHA256(
secret, timestamp + METHOD + path + body)). Both refuse a timestamp more than `skew_s` away
from the server clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from polycopy.sim.signing import SignatureError, clob_auth_digest, recover_signer

L1_ERROR = "Invalid L1 Request headers"
L2_ERROR = "Unauthorized/Invalid api key"


class AuthError(Exception):
    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class ApiCredentials:
    key: str
    secret: str  # base64url, as the venue hands it out
    passphrase: str
    address: str  # checksummed signer address the key belongs to
    nonce: int

    def public(self) -> dict[str, str]:
        return {"apiKey": self.key, "secret": self.secret, "passphrase": self.passphrase}


class KeyStore:
    """API keys per (address, nonce), derived deterministically like the venue's."""

    def __init__(self, seed: int) -> None:
        self._master = hashlib.sha256(f"polycopy-sim-{seed}".encode()).digest()
        self._by_key: dict[str, ApiCredentials] = {}
        self._by_owner: dict[tuple[str, int], ApiCredentials] = {}

    def create(self, address: str, nonce: int) -> ApiCredentials | None:
        """New credentials, or None when this (address, nonce) already has some."""
        if (address.lower(), nonce) in self._by_owner:
            return None
        return self.derive(address, nonce)

    def derive(self, address: str, nonce: int) -> ApiCredentials:
        owner = (address.lower(), nonce)
        existing = self._by_owner.get(owner)
        if existing is not None:
            return existing
        seed = hmac.new(self._master, f"{owner[0]}:{nonce}".encode(), hashlib.sha256).digest()
        creds = ApiCredentials(
            key=str(uuid.UUID(bytes=seed[:16])),
            secret=base64.urlsafe_b64encode(hashlib.sha256(seed + b"s").digest()).decode(),
            passphrase=hashlib.sha256(seed + b"p").hexdigest(),
            address=address,
            nonce=nonce,
        )
        self._by_key[creds.key] = creds
        self._by_owner[owner] = creds
        return creds

    def get(self, key: str) -> ApiCredentials | None:
        return self._by_key.get(key)

    def keys_of(self, address: str) -> list[str]:
        return [c.key for (owner, _), c in self._by_owner.items() if owner == address.lower()]

    def delete(self, key: str) -> None:
        creds = self._by_key.pop(key, None)
        if creds is not None:
            self._by_owner.pop((creds.address.lower(), creds.nonce), None)


def verify_l1(headers: Mapping[str, str], now: float, skew_s: float) -> tuple[str, int]:
    """(address, nonce) of a valid L1 request; AuthError otherwise."""
    try:
        address = headers["POLY_ADDRESS"]
        signature = headers["POLY_SIGNATURE"]
        timestamp = headers["POLY_TIMESTAMP"]
        nonce = int(headers.get("POLY_NONCE", "0"))
    except (KeyError, ValueError):
        raise AuthError(L1_ERROR) from None
    _check_skew(timestamp, now, skew_s, L1_ERROR)
    try:
        signer = recover_signer(clob_auth_digest(address, timestamp, nonce), signature)
    except SignatureError:
        raise AuthError(L1_ERROR) from None
    if signer.lower() != address.lower():
        raise AuthError(L1_ERROR)
    return signer, nonce


def verify_l2(
    store: KeyStore,
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: str,
    now: float,
    skew_s: float,
) -> ApiCredentials:
    """The credentials of a valid L2 request; AuthError otherwise."""
    try:
        address = headers["POLY_ADDRESS"]
        key = headers["POLY_API_KEY"]
        passphrase = headers["POLY_PASSPHRASE"]
        signature = headers["POLY_SIGNATURE"]
        timestamp = headers["POLY_TIMESTAMP"]
    except KeyError:
        raise AuthError(L2_ERROR) from None
    creds = store.get(key)
    if creds is None or not hmac.compare_digest(creds.passphrase, passphrase):
        raise AuthError(L2_ERROR)
    if creds.address.lower() != address.lower():
        raise AuthError(L2_ERROR)
    _check_skew(timestamp, now, skew_s, L2_ERROR)
    expected = hmac_signature(creds.secret, timestamp, method, path, body)
    if not hmac.compare_digest(_b64_bytes(expected), _b64_bytes(signature)):
        raise AuthError(L2_ERROR)
    return creds


def hmac_signature(secret: str, timestamp: str, method: str, path: str, body: str) -> str:
    """The L2 signature a client must send (also used by tests to sign raw requests)."""
    message = f"{timestamp}{method}{path}{body}".encode()
    digest = hmac.new(_b64_bytes(secret), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()


def _b64_bytes(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):
        return b""


def _check_skew(timestamp: str, now: float, skew_s: float, error: str) -> None:
    try:
        sent = float(timestamp)
    except ValueError:
        raise AuthError(error) from None
    if abs(sent - now) > skew_s:
        raise AuthError(error)
