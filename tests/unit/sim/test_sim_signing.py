"""The simulator's EIP-712 hashing against eth_account's own, and signer recovery."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data

from polycopy.sim.signing import (
    NEG_RISK_EXCHANGE,
    STANDARD_EXCHANGE,
    OrderStruct,
    SignatureError,
    clob_auth_digest,
    order_digest,
    recover_signer,
)

ZERO32 = "0x" + "00" * 32


def typed_order(order: OrderStruct, exchange: str) -> dict[str, object]:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Order": [
                {"name": "salt", "type": "uint256"},
                {"name": "maker", "type": "address"},
                {"name": "signer", "type": "address"},
                {"name": "tokenId", "type": "uint256"},
                {"name": "makerAmount", "type": "uint256"},
                {"name": "takerAmount", "type": "uint256"},
                {"name": "side", "type": "uint8"},
                {"name": "signatureType", "type": "uint8"},
                {"name": "timestamp", "type": "uint256"},
                {"name": "metadata", "type": "bytes32"},
                {"name": "builder", "type": "bytes32"},
            ],
        },
        "primaryType": "Order",
        "domain": {
            "name": "Polymarket CTF Exchange",
            "version": "2",
            "chainId": 137,
            "verifyingContract": exchange,
        },
        "message": {
            "salt": order.salt,
            "maker": order.maker,
            "signer": order.signer,
            "tokenId": order.token_id,
            "makerAmount": order.maker_amount,
            "takerAmount": order.taker_amount,
            "side": order.side,
            "signatureType": order.signature_type,
            "timestamp": order.timestamp,
            "metadata": order.metadata,
            "builder": order.builder,
        },
    }


def an_order(address: str) -> OrderStruct:
    return OrderStruct(
        salt=123456789,
        maker=address,
        signer=address,
        token_id=71321045679252212594626385532706912750332728571942532289631379312455583992563,
        maker_amount=25_000_000,
        taker_amount=44_642_800,
        side=0,
        signature_type=0,
        timestamp=1_790_374_400_123,
        metadata=bytes(32),
        builder=bytes(32),
    )


@pytest.mark.parametrize(
    ("neg_risk", "exchange"), [(False, STANDARD_EXCHANGE), (True, NEG_RISK_EXCHANGE)]
)
def test_order_digest_matches_eth_account_and_recovers_the_signer(
    neg_risk: bool, exchange: str
) -> None:
    account = Account.create()
    order = an_order(account.address)
    typed = typed_order(order, exchange)
    expected = _hash_eip191_message(encode_typed_data(full_message=typed))
    digest = order_digest(order, neg_risk=neg_risk)
    assert digest == expected
    signature = account.sign_typed_data(full_message=typed).signature.hex()
    assert recover_signer(digest, "0x" + signature.removeprefix("0x")) == account.address


def test_a_changed_field_recovers_someone_else() -> None:
    account = Account.create()
    order = an_order(account.address)
    signature = account.sign_typed_data(full_message=typed_order(order, STANDARD_EXCHANGE))
    changed = dataclasses.replace(order, maker_amount=26_000_000)
    hex_signature = "0x" + signature.signature.hex().removeprefix("0x")
    assert recover_signer(order_digest(changed, neg_risk=False), hex_signature) != account.address


def test_clob_auth_digest_matches_eth_account() -> None:
    account = Account.create()
    typed = {
        "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": 137},
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "ClobAuth": [
                {"name": "address", "type": "address"},
                {"name": "timestamp", "type": "string"},
                {"name": "nonce", "type": "uint256"},
                {"name": "message", "type": "string"},
            ],
        },
        "primaryType": "ClobAuth",
        "message": {
            "address": account.address,
            "timestamp": "1790000000",
            "nonce": 3,
            "message": "This message attests that I control the given wallet",
        },
    }
    expected = _hash_eip191_message(encode_typed_data(full_message=typed))
    assert clob_auth_digest(account.address, "1790000000", 3) == expected


@pytest.mark.parametrize("signature", ["", "0x", "0x1234", "nothex", "0x" + "zz" * 65])
def test_garbage_signatures_are_refused(signature: str) -> None:
    with pytest.raises(SignatureError):
        recover_signer(bytes(32), signature)
