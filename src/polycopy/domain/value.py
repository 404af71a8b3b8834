"""`@value`: immutable value objects that are cheap to build.

A `@dataclass(frozen=True)` pays one `object.__setattr__` call per field on every construction,
which made frozen records about 3× slower to build than plain slotted ones — and the replay
builds several per leader trade. `@value` classes are plain slotted dataclasses at run time,
while type checkers treat them as frozen (PEP 681 `frozen_default`): `mypy --strict` rejects
any assignment to a field, so immutability is still enforced where it matters, before merge.
They are hashable by value, like frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def value(cls: type[T]) -> type[T]:
    return dataclass(slots=True, unsafe_hash=True)(cls)
