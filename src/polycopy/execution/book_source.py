"""Recorded order books for backtests (`replay --book-dir DIR`).

DIR holds `GET /book` responses, one JSON object per file, any file name. A book's `asset_id`
says which token it is and its `timestamp` (ms) when it was taken — a file without one is
malformed, and named as such; a token may have many.
A trade uses the latest book of its token at or before the trade's time; books are not
depleted by earlier fills (each trade sees the recorded book as it was).
"""

from __future__ import annotations

import bisect
import json
from decimal import Decimal
from pathlib import Path

from polycopy.execution.book_walk import Book, BookError, parse_book


class BookDirectory:
    def __init__(self, books: list[Book]) -> None:
        by_asset: dict[str, list[Book]] = {}
        for book in books:
            by_asset.setdefault(book.asset_id, []).append(book)
        self._books = {
            asset: sorted(items, key=lambda b: b.timestamp_ms) for asset, items in by_asset.items()
        }
        self._times = {
            asset: [b.timestamp_ms for b in items] for asset, items in self._books.items()
        }

    @classmethod
    def load(cls, directory: Path | str) -> BookDirectory:
        root = Path(directory)
        if not root.is_dir():
            raise BookError(f"{root}: not a directory")
        books = []
        for path in sorted(p for p in root.iterdir() if p.is_file()):
            try:
                payload = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
                book = parse_book(payload)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise BookError(f"{path}: not a /book JSON response: {exc}") from None
            if book.timestamp_ms <= 0:  # a live /book may omit it; a recorded one must say when
                raise BookError(
                    f"{path}: malformed /book response: no timestamp (ms since the epoch), so"
                    " no trade can be matched to it"
                )
            books.append(book)
        return cls(books)

    def __len__(self) -> int:
        return sum(len(items) for items in self._books.values())

    def assets(self) -> list[str]:
        return sorted(self._books)

    def at(self, asset: str, timestamp_ms: int) -> Book | None:
        """The latest book of `asset` taken at or before `timestamp_ms`."""
        times = self._times.get(asset)
        if not times:
            return None
        index = bisect.bisect_right(times, timestamp_ms)
        return self._books[asset][index - 1] if index else None
