"""EIP-712 hashing of CLOB V2 orders and of L1 `ClobAuth` messages, and signer recovery.

The order hash is the EIP-712 digest of the V2 `Order` struct under the exchange's domain
(name "Polymarket CTF Exchange", version "2", chain 137, the standard or neg-risk exchange as
verifying contract); Polymarket uses it as the order id. Words are encoded by hand: every field
is one 32-byte word, and this runs once per posted order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from eth_keys.datatypes import Signature
from eth_utils.crypto import keccak

CHAIN_ID = 137
STANDARD_EXCHANGE = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE = "0xe2222d279d744050d28e00520010520000310F59"
EXCHANGE_NAME = "Polymarket CTF Exchange"
EXCHANGE_VERSION = "2"
CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"

_ORDER_TYPE_HASH = keccak(
    b"Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,"
    b"uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,"
    b"bytes32 builder)"
)
_EXCHANGE_DOMAIN_TYPE_HASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_AUTH_DOMAIN_TYPE_HASH = keccak(b"EIP712Domain(string name,string version,uint256 chainId)")
_AUTH_TYPE_HASH = keccak(b"ClobAuth(address address,string timestamp,uint256 nonce,string message)")
_UINT256_LIMIT = 1 << 256


class SignatureError(ValueError):
    """A signature or signed field that cannot be decoded or verified."""


@dataclass(frozen=True, slots=True)
class OrderStruct:
    """The signed fields of a V2 order (`expiration` travels on the wire but is not signed)."""

    salt: int
    maker: str
    signer: str
    token_id: int
    maker_amount: int
    taker_amount: int
    side: int  # 0 BUY, 1 SELL
    signature_type: int
    timestamp: int  # ms
    metadata: bytes
    builder: bytes


def order_hash(order: OrderStruct, *, neg_risk: bool) -> str:
    """The order id: 0x-hex EIP-712 digest under the exchange the market settles on."""
    return "0x" + order_digest(order, neg_risk=neg_risk).hex()


def order_digest(order: OrderStruct, *, neg_risk: bool) -> bytes:
    exchange = NEG_RISK_EXCHANGE if neg_risk else STANDARD_EXCHANGE
    struct = keccak(
        _ORDER_TYPE_HASH
        + _uint(order.salt)
        + _address(order.maker)
        + _address(order.signer)
        + _uint(order.token_id)
        + _uint(order.maker_amount)
        + _uint(order.taker_amount)
        + _uint(order.side)
        + _uint(order.signature_type)
        + _uint(order.timestamp)
        + _bytes32(order.metadata)
        + _bytes32(order.builder)
    )
    return keccak(b"\x19\x01" + _exchange_domain(exchange) + struct)


def clob_auth_digest(address: str, timestamp: str, nonce: int) -> bytes:
    """Digest of the L1 `ClobAuth` message that `POST /auth/api-key` requires."""
    struct = keccak(
        _AUTH_TYPE_HASH
        + _address(address)
        + keccak(timestamp.encode())
        + _uint(nonce)
        + keccak(CLOB_AUTH_MESSAGE.encode())
    )
    return keccak(b"\x19\x01" + _auth_domain() + struct)


def recover_signer(digest: bytes, signature: str) -> str:
    """The checksummed address whose key made `signature` (65-byte r‖s‖v hex) over `digest`."""
    raw = _hex_bytes(signature, "signature")
    if len(raw) != 65:
        raise SignatureError(f"signature: expected 65 bytes, got {len(raw)}")
    v = raw[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise SignatureError("signature: bad recovery id")
    try:
        public_key = Signature(raw[:64] + bytes((v,))).recover_public_key_from_msg_hash(digest)
    except Exception as exc:  # eth_keys raises several types for unrecoverable input
        raise SignatureError(f"signature: not recoverable: {exc}") from None
    address: str = public_key.to_checksum_address()
    return address


@lru_cache(maxsize=4)
def _exchange_domain(exchange: str) -> bytes:
    return keccak(
        _EXCHANGE_DOMAIN_TYPE_HASH
        + keccak(EXCHANGE_NAME.encode())
        + keccak(EXCHANGE_VERSION.encode())
        + _uint(CHAIN_ID)
        + _address(exchange)
    )


@lru_cache(maxsize=1)
def _auth_domain() -> bytes:
    return keccak(
        _AUTH_DOMAIN_TYPE_HASH + keccak(b"ClobAuthDomain") + keccak(b"1") + _uint(CHAIN_ID)
    )


def _uint(value: int) -> bytes:
    if not 0 <= value < _UINT256_LIMIT:
        raise SignatureError(f"value out of uint256 range: {value}")
    return value.to_bytes(32, "big")


def _address(value: str) -> bytes:
    raw = _hex_bytes(value, "address")
    if len(raw) != 20:
        raise SignatureError(f"not an address: {value!r}")
    return bytes(12) + raw


def _bytes32(value: bytes) -> bytes:
    if len(value) != 32:
        raise SignatureError("expected 32 bytes")
    return value


def _hex_bytes(value: str, label: str) -> bytes:
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise SignatureError(f"{label}: expected 0x-prefixed hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise SignatureError(f"{label}: not hex") from None


def bytes32_from_hex(value: str, label: str) -> bytes:
    return _bytes32_checked(_hex_bytes(value, label), label)


def _bytes32_checked(raw: bytes, label: str) -> bytes:
    if len(raw) != 32:
        raise SignatureError(f"{label}: expected 32 bytes")
    return raw
