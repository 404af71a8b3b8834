"""Signing a marketable order with *our* amounts through `polymarket-client`'s own signer.

The SDK's `create_market_order` rounds amounts itself (taker side to the tick's "amount"
decimals, which the venue refuses for FAK/FOK on 0.001/0.0001 ticks, reference §3.4). So we
build the SDK's order draft with the integer amounts from `amounts.py` and let the SDK do
what it is for: the V2 EIP-712 struct, the signature (EOA, proxy, safe or deposit wallet),
the wire payload. The caller then checks the signed amounts against its own.

Everything here touches SDK internals (`_internal.actions.orders`); like `sdk_env`, it is the
only such place, and the SDK's minor version is pinned.
"""

from __future__ import annotations

import json
from typing import Any, cast

from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from polymarket._internal.actions.orders.context import resolve_order_exchange_address
from polymarket._internal.actions.orders.orders import create_signed_order, create_unsigned_order
from polymarket._internal.actions.orders.typed_data import (
    build_order_signature,
    build_order_typed_data,
)
from polymarket._internal.actions.orders.types import OrderDraft
from polymarket._internal.wallet import wrap_deposit_wallet_signature
from polymarket.clients.async_secure import AsyncSecureClient
from polymarket.models.clob.orders import SignedOrder
from polymarket.types import EvmAddress, HexString

from polycopy.execution.errors import InvariantError


def sign_market_order(
    client: AsyncSecureClient,
    *,
    token_id: str,
    side: str,
    maker_amount: int,
    taker_amount: int,
    neg_risk: bool,
    order_type: str,
) -> tuple[SignedOrder, str]:
    """Sign (CPU only, no I/O; safe in a worker thread). Returns the order and its hash."""
    ctx = client._ctx
    config = ctx.environment_config
    draft = OrderDraft(
        chain_id=config.chain_id,
        exchange_address=resolve_order_exchange_address(
            config, asset_id=token_id, neg_risk=neg_risk
        ),
        expiration=0,
        funder_address=ctx.wallet,
        offered_amount=maker_amount,
        order_type=cast(Any, order_type),
        side=cast(Any, side),
        signer=EvmAddress(ctx.signer.address),
        requested_amount=taker_amount,
        asset_id=cast(Any, token_id),
    )
    unsigned = create_unsigned_order(draft, wallet=ctx.wallet, wallet_type=ctx.wallet_type)
    typed_data = build_order_typed_data(unsigned)
    try:
        signed_message = ctx.signer.sign_typed_data(full_message=typed_data)
    except Exception as error:  # the SDK's own signer; never echo its message (key material)
        raise InvariantError(f"order signing failed ({type(error).__name__})") from None
    raw_hex = signed_message.signature.hex()
    signature = HexString(raw_hex if raw_hex.startswith("0x") else "0x" + raw_hex)
    final = wrap_deposit_wallet_signature(
        signer=ctx.signer.address,
        signer_type=ctx.signer_type,
        signature=build_order_signature(unsigned, signature),
    )
    signed = create_signed_order(unsigned, final, post_only=False)
    return signed, order_hash(typed_data)


def order_hash(typed_data: dict[str, Any]) -> str:
    """The EIP-712 digest of the Order struct under the exchange domain: the venue's order id.

    For a deposit wallet the SDK signs a `TypedDataSign` wrapper; the order itself (and so its
    hash) is the wrapped `contents`.
    """
    standard = typed_data
    if typed_data.get("primaryType") != "Order":
        types = typed_data["types"]
        standard = {
            "types": {"EIP712Domain": types["EIP712Domain"], "Order": types["Order"]},
            "primaryType": "Order",
            "domain": typed_data["domain"],
            "message": typed_data["message"]["contents"],
        }
    signable = encode_typed_data(full_message=standard)
    digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    return "0x" + bytes(digest).hex()


def signed_payload(signed: SignedOrder) -> str:
    """Canonical JSON of a signed order (what the ledger keeps before the POST)."""
    data = {
        "builder": signed.builder,
        "expiration": str(signed.expiration),
        "maker": signed.maker,
        "makerAmount": str(signed.maker_amount),
        "metadata": signed.metadata,
        "orderType": signed.order_type,
        "salt": signed.salt,
        "side": signed.side,
        "signature": signed.signature,
        "signatureType": signed.signature_type,
        "signer": signed.signer,
        "takerAmount": str(signed.taker_amount),
        "timestamp": str(signed.timestamp),
        "tokenId": signed.token_id,
    }
    return json.dumps(data, separators=(",", ":"), sort_keys=True)
