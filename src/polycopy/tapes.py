"""Reading recorded leader activity: tapes (JSON, JSONL, CSV) and `/positions` snapshots.

A malformed row is reported with its file and line and counted; it never stops the read.
Several tapes are merged by trade time; the order of rows within one second is kept, with a
newest-first file (the Data API's default order) turned around first.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from polycopy.domain.events import LeaderTrade
from polycopy.domain.money import ZERO, BadNumber, to_decimal
from polycopy.ingest.decode import (
    DecodeError,
    NotATrade,
    OccurrenceCounter,
    bounded_amount,
    decode_trade,
    wallet_of,
)


class TapeError(Exception):
    """A tape or snapshot file that cannot be read at all."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class TapeStats:
    rows: int = 0
    trades: int = 0
    non_trade: Counter[str] = field(default_factory=Counter)  # activity type → count
    other_wallet: int = 0
    malformed: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    def merge(self, other: TapeStats) -> None:
        self.rows += other.rows
        self.trades += other.trades
        self.non_trade.update(other.non_trade)
        self.other_wallet += other.other_wallet
        self.malformed += other.malformed
        self.problems.extend(other.problems)


@dataclass
class Tape:
    trades: list[LeaderTrade]
    stats: TapeStats


def read_tapes(paths: Iterable[Path | str], leaders: frozenset[str] | None = None) -> Tape:
    """Read and merge several tapes; `leaders` (lower-case) keeps only those wallets."""
    merged: list[tuple[Any, int, int, LeaderTrade]] = []
    stats = TapeStats()
    for file_index, path in enumerate(paths):
        tape = read_tape(path, leaders)
        stats.merge(tape.stats)
        merged.extend((t.timestamp, file_index, i, t) for i, t in enumerate(tape.trades))
    merged.sort(key=lambda item: item[:3])
    return Tape(trades=[item[3] for item in merged], stats=stats)


def read_tape(path: Path | str, leaders: frozenset[str] | None = None) -> Tape:
    path = Path(path)
    stats = TapeStats()
    label = str(path)
    counter = OccurrenceCounter()
    trades: list[LeaderTrade] = []
    source = f"tape:{path.name}"
    for line, row in _rows(path, stats):
        stats.rows += 1
        if isinstance(row, RowProblem):
            stats.malformed += 1
            stats.problems.append(row)
            continue
        wallet = wallet_of(row) if isinstance(row, Mapping) else None
        if leaders is not None and wallet is not None and wallet not in leaders:
            stats.other_wallet += 1
            continue
        try:
            trade = decode_trade(row, source=source)
        except NotATrade as kind:
            stats.non_trade[kind.kind] += 1
            continue
        except DecodeError as exc:
            stats.malformed += 1
            stats.problems.append(RowProblem(label, line, str(exc)))
            continue
        trades.append(counter.assign(trade))
    stats.trades = len(trades)
    if len(trades) > 1 and trades[0].timestamp > trades[-1].timestamp:
        trades.reverse()  # newest-first file: restore the order trades happened in
    return Tape(trades=trades, stats=stats)


# --- formats --------------------------------------------------------------------------------
def _rows(path: Path, stats: TapeStats) -> Iterator[tuple[int, Any]]:
    """(line, row-or-problem) pairs from a JSON, JSONL or CSV file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TapeError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TapeError(f"{path}: cannot read: {exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv_rows(path, text)
    elif suffix in (".jsonl", ".ndjson"):
        yield from _jsonl_rows(path, text)
    else:
        stripped = text.lstrip()
        if stripped.startswith(("[", "{")) and not _looks_like_jsonl(stripped):
            yield from _json_rows(path, text)
        else:
            yield from _jsonl_rows(path, text)


def _looks_like_jsonl(text: str) -> bool:
    if not text.startswith("{"):
        return False
    first_line = text.split("\n", 1)[0].strip()
    try:
        value = json.loads(first_line)
    except json.JSONDecodeError:
        return False
    return isinstance(value, dict) and "data" not in value


_DECODER = json.JSONDecoder(parse_float=Decimal)


def _json_rows(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    """Elements of a JSON array (bare or inside {"data": [...]}) with the line each starts on.

    Elements are decoded one by one, so a truncated or damaged file still yields every
    element before the damage, then one problem naming where it is.
    """
    label = str(path)
    index = _skip_ws(text, 0)
    if text.startswith("{", index):
        start = _find_data_array(text, index)
        if start is None:
            try:
                whole = json.loads(text, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                yield exc.lineno, RowProblem(label, exc.lineno, f"not valid JSON: {exc.msg}")
                return
            if isinstance(whole, dict) and isinstance(whole.get("data"), list):
                for row in whole["data"]:
                    yield 1, row
                return
            yield 1, RowProblem(label, 1, 'expected an array of rows or {"data": [...]}')
            return
        index = start
    if not text.startswith("[", index):
        yield 1, RowProblem(label, 1, 'expected an array of rows or {"data": [...]}')
        return
    index = _skip_ws(text, index + 1)
    if text.startswith("]", index):
        return
    line, counted_to = 1, 0  # newlines are counted incrementally: the file is read once

    def line_at(offset: int) -> int:
        nonlocal line, counted_to
        line += text.count("\n", counted_to, offset)
        counted_to = offset
        return line

    while True:
        start_line = line_at(index)
        try:
            row, index = _DECODER.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            detail = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            yield start_line, RowProblem(label, start_line, detail)
            resumed = _next_row(text, index + 1)
            if resumed is None:
                return
            index = resumed
            continue
        yield start_line, row
        index = _skip_ws(text, index)
        if text.startswith(",", index):
            index = _skip_ws(text, index + 1)
            continue
        if text.startswith("]", index):
            return
        where = line_at(index)
        yield where, RowProblem(label, where, "expected ',' or ']' between rows")
        resumed = _next_row(text, index)
        if resumed is None:
            return
        index = resumed


def _next_row(text: str, index: int) -> int | None:
    """After damage, the start of the next row that decodes: an object right after a ',' (or
    the '['). Each damaged stretch is reported once; the rows after it are read as usual."""
    while (index := text.find("{", index)) >= 0:
        before = index - 1
        while before >= 0 and text[before] in " \t\r\n":
            before -= 1
        if before >= 0 and text[before] in ",[":
            try:
                _DECODER.raw_decode(text, index)
            except json.JSONDecodeError:
                pass
            else:
                return index
        index += 1
    return None


def _find_data_array(text: str, index: int) -> int | None:
    """Offset of the '[' of the envelope's own "data" array (a "data" key nested in another
    member does not count). None when there is none or the envelope cannot be walked."""
    index = _skip_ws(text, index + 1)  # past the '{'
    while text.startswith('"', index):
        try:
            key, index = _DECODER.raw_decode(text, index)
        except json.JSONDecodeError:
            return None
        index = _skip_ws(text, index)
        if not text.startswith(":", index):
            return None
        index = _skip_ws(text, index + 1)
        if key == "data":
            return index if text.startswith("[", index) else None
        try:
            _, index = _DECODER.raw_decode(text, index)  # another member: skip its value
        except json.JSONDecodeError:
            return None
        index = _skip_ws(text, index)
        if text.startswith(",", index):
            index = _skip_ws(text, index + 1)
    return None


def _skip_ws(text: str, index: int) -> int:
    length = len(text)
    while index < length and text[index] in " \t\r\n":
        index += 1
    return index


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    label = str(path)
    for number, raw in enumerate(text.splitlines(), start=1):
        raw = raw.strip()
        if not raw:
            continue
        try:
            yield number, _DECODER.decode(raw)
        except json.JSONDecodeError as exc:
            yield number, RowProblem(label, number, f"not valid JSON: {exc.msg}")


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    label = str(path)
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None:
        return
    width = len(reader.fieldnames)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, RowProblem(label, reader.line_num, f"bad CSV: {exc}")
            continue
        if None in row or len(row) != width or any(v is None for v in row.values()):
            yield (
                reader.line_num,
                RowProblem(
                    label, reader.line_num, f"expected {width} columns, got a different count"
                ),
            )
            continue
        yield reader.line_num, row


# --- positions snapshots --------------------------------------------------------------------
@dataclass(frozen=True)
class PositionsSnapshot:
    leader: str
    exposure: Decimal  # Σ currentValue of open positions (0 < curPrice < 1)
    positions: dict[str, Decimal]  # asset → shares (open positions)
    marks: dict[str, Decimal]  # asset → curPrice

    def combined(self, more: PositionsSnapshot) -> PositionsSnapshot:
        """This snapshot with another page of the same wallet's positions added."""
        positions = dict(self.positions)
        for asset, shares in more.positions.items():
            positions[asset] = positions.get(asset, ZERO) + shares
        return PositionsSnapshot(
            self.leader, self.exposure + more.exposure, positions, {**self.marks, **more.marks}
        )


def read_positions(
    path: Path | str, problems: list[RowProblem] | None = None
) -> list[PositionsSnapshot]:
    """A `/positions` (v1) or `/v2/positions` response; one snapshot per wallet found in it.

    A malformed position is reported in `problems` (file and line) and left out; without a
    `problems` list it raises TapeError instead. A file that is not a positions response at
    all always raises.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TapeError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TapeError(f"{path}: cannot read: {exc}") from None
    if not text.lstrip().startswith(("[", "{")):
        raise TapeError(f'{path}: expected an array of positions or {{"data": [...]}}')
    by_wallet: dict[str, dict[str, Any]] = {}
    for line, row in _json_rows(path, text):
        problem = row if isinstance(row, RowProblem) else _add_position(by_wallet, row)
        if problem is None:
            continue
        if isinstance(problem, str):
            problem = RowProblem(str(path), line, problem)
        if problems is None:
            raise TapeError(str(problem))
        problems.append(problem)
    return [
        PositionsSnapshot(wallet, e["exposure"], e["positions"], e["marks"])
        for wallet, e in sorted(by_wallet.items())
    ]


def _add_position(by_wallet: dict[str, dict[str, Any]], row: Any) -> str | None:
    """Add one position row to its wallet's snapshot; the problem with it, if any."""
    if not isinstance(row, Mapping):
        return "expected a position object"
    wallet = wallet_of(row)
    if wallet is None:
        return "proxyWallet missing"
    try:
        value = _first_number(row, "currentValue", "current_value")
        price = _first_number(row, "curPrice", "current_price")
        size = _first_number(row, "size", "current_size")
    except (BadNumber, DecodeError) as exc:
        return str(exc)
    except KeyError as exc:
        return str(exc.args[0])
    entry = by_wallet.setdefault(wallet, {"exposure": ZERO, "positions": {}, "marks": {}})
    asset = str(row.get("asset") or row.get("token_id") or "")
    if 0 < price < 1:  # open positions only; resolved ones sit at 0 or 1
        entry["exposure"] += value
        if asset:
            entry["positions"][asset] = entry["positions"].get(asset, ZERO) + size
            entry["marks"][asset] = price
    return None


def _first_number(row: Mapping[str, Any], *keys: str) -> Decimal:
    for key in keys:
        if key in row and row[key] is not None:
            return bounded_amount(to_decimal(row[key]), key)
    raise KeyError(f"{keys[0]} missing")


# --- raw rows for the simulator -------------------------------------------------------------
def read_trade_rows(paths: Iterable[Path | str]) -> list[dict[str, Any]]:
    """The TRADE rows of several tapes as they are written (enrichment fields included),
    merged oldest first. Rows that are malformed or not trades are left out: the simulator
    replays what a leader did, with the titles, slugs and profiles the tape carries."""
    merged: list[tuple[Any, int, int, dict[str, Any]]] = []
    for file_index, path in enumerate(paths):
        rows: list[tuple[Any, dict[str, Any]]] = []
        for _, row in _rows(Path(path), TapeStats()):
            if not isinstance(row, Mapping):
                continue
            try:
                trade = decode_trade(row)
            except (NotATrade, DecodeError):
                continue
            rows.append((trade.timestamp, dict(row)))
        if len(rows) > 1 and rows[0][0] > rows[-1][0]:
            rows.reverse()  # newest-first file
        merged.extend((ts, file_index, i, row) for i, (ts, row) in enumerate(rows))
    merged.sort(key=lambda item: item[:3])
    return [item[3] for item in merged]
