"""L2 HMAC and L1 ClobAuth checks, with the ±30 s skew."""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from polymarket._internal.hmac import build_hmac_signature
from polymarket._internal.l1_auth import sign_api_key_auth

from polycopy.sim.auth import AuthError, KeyStore, verify_l1, verify_l2


def test_l2_accepts_the_sdks_signature_and_refuses_skew_and_tampering() -> None:
    store = KeyStore(seed=1)
    account = Account.create()
    creds = store.derive(account.address, 0)
    now = int(time.time())
    body = '{"a":1}'
    headers = {
        "POLY_ADDRESS": account.address,
        "POLY_API_KEY": creds.key,
        "POLY_PASSPHRASE": creds.passphrase,
        "POLY_TIMESTAMP": str(now),
        "POLY_SIGNATURE": build_hmac_signature(
            secret=creds.secret, timestamp=now, method="POST", path="/order", body=body
        ),
    }
    assert verify_l2(store, headers, "POST", "/order", body, now, 30) == creds
    with pytest.raises(AuthError):
        verify_l2(store, headers, "POST", "/order", body, now + 31, 30)
    with pytest.raises(AuthError):
        verify_l2(store, headers, "POST", "/order", body + " ", now, 30)
    with pytest.raises(AuthError):
        verify_l2(store, {**headers, "POLY_PASSPHRASE": "x"}, "POST", "/order", body, now, 30)


def test_l1_recovers_the_wallet_and_keys_are_stable_per_nonce() -> None:
    account = Account.create()
    now = int(time.time())
    signed = sign_api_key_auth(account, chain_id=137, timestamp=now, nonce=2)
    headers = {
        "POLY_ADDRESS": signed.address,
        "POLY_SIGNATURE": signed.signature,
        "POLY_TIMESTAMP": str(signed.timestamp),
        "POLY_NONCE": "2",
    }
    assert verify_l1(headers, now, 30) == (account.address, 2)
    with pytest.raises(AuthError):
        verify_l1({**headers, "POLY_ADDRESS": Account.create().address}, now, 30)
    with pytest.raises(AuthError):
        verify_l1(headers, now + 60, 30)
    store = KeyStore(seed=1)
    first = store.create(account.address, 2)
    assert first is not None
    assert store.create(account.address, 2) is None  # exists: the SDK then derives
    assert store.derive(account.address, 2) == first
    assert store.derive(account.address, 3) != first
