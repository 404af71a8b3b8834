"""`replay --book-dir`: fills walk the latest recorded book at or before each trade (the paper
executor's own walk); tokens without a book fall back to the leader's price."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest

from polycopy.cli import main
from polycopy.execution.book_source import BookDirectory

SHARED = Path(__file__).resolve().parents[4] / "shared/data/books"
LEADER = "0x00000000000000000000000000000000000000a1"
Z_TOKEN = "4242"


def _top_of_book_rows(count: int) -> list[dict[str, object]]:
    rows = []
    with gzip.open(
        SHARED / "ckoyuncu__polymarket_research__us_east_polymarket_books_14.jsonl.gz"
    ) as f:
        for line in f:
            rows.append(json.loads(line))
            if len(rows) >= 200:
                break
    token = rows[0]["token_id"]
    return [r for r in rows if r["token_id"] == token][:count]


def _as_book(row: dict[str, object]) -> dict[str, object]:
    """A top-of-book row in the shape of a `GET /book` response."""
    return {
        "market": row["condition_id"],
        "asset_id": row["token_id"],
        "timestamp": str(row["ts_exchange"]),
        "hash": "",
        "bids": [{"price": str(row["best_bid"]), "size": str(row["best_bid_size"])}],
        "asks": [{"price": str(row["best_ask"]), "size": str(row["best_ask_size"])}],
        "min_order_size": "5",
        "tick_size": "0.01",
        "neg_risk": False,
    }


def _trade(asset: str, ts: int, price: str, size: str, n: int) -> dict[str, object]:
    return {
        "proxyWallet": LEADER,
        "timestamp": ts,
        "conditionId": "0x" + "cd" * 32,
        "type": "TRADE",
        "size": size,
        "price": price,
        "asset": asset,
        "side": "BUY",
        "transactionHash": "0x" + f"{n:064x}",
        "outcomeIndex": 0,
    }


def test_replay_uses_the_latest_book_at_or_before_each_trade(tmp_path: Path) -> None:
    books = tmp_path / "books"
    books.mkdir()
    real = json.loads((SHARED / "ra1nty__polymarket-cli__book.json").read_text())
    asset = real["asset_id"]
    t_book = int(real["timestamp"])
    (books / "a-first.json").write_text(json.dumps(real))
    later = dict(real, timestamp=str(t_book + 100_000))
    later["asks"] = [a for a in real["asks"] if Decimal(a["price"]) >= Decimal("0.01")]
    (books / "zz.later").write_text(json.dumps(later))
    tob = _top_of_book_rows(3)
    for i, row in enumerate(tob):
        (books / f"tob-{i}.json").write_text(json.dumps(_as_book(row)))
    g_token, g_time = str(tob[0]["token_id"]), int(tob[0]["ts_exchange"])  # type: ignore[call-overload]

    directory = BookDirectory.load(books)
    assert len(directory) == 5
    assert directory.at(asset, t_book - 1) is None
    assert directory.at(asset, t_book + 99_999).timestamp_ms == t_book  # type: ignore[union-attr]
    assert directory.at(asset, t_book + 100_000).timestamp_ms == t_book + 100_000  # type: ignore[union-attr]

    tape = tmp_path / "tape.json"
    tape.write_text(
        json.dumps(
            [
                _trade(asset, t_book // 1000 - 100, "0.005", "100000", 1),  # before any book
                _trade(asset, t_book // 1000 + 1, "0.005", "100000", 2),  # first book: 0.001
                _trade(asset, (t_book + 100_000) // 1000 + 1, "0.012", "100000", 3),  # later
                _trade(g_token, g_time // 1000 + 1, "0.50", "100", 4),  # wide real book
                _trade(Z_TOKEN, g_time // 1000 + 2, "0.40", "100", 5),  # no book at all
            ]
        )
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        "bankroll_usdc: 200\n"
        "sizing: {fixed_copy_rate_default: 0.1}\n"
        f"leaders:\n  - address: '{LEADER}'\n    name: lead\n"
    )

    def run(out: Path, *extra: str) -> list[dict[str, object]]:
        code = main(
            ["replay", "--config", str(config), "--tape", str(tape), "--out", str(out), *extra]
        )
        assert code == 0
        return [json.loads(line) for line in out.read_text().splitlines()]

    with_books = run(tmp_path / "books.jsonl", "--book-dir", str(books))
    wide, nobook, before, first, second = with_books  # in trade-time order
    assert before["exec_price"] == "0.005"  # fallback: the leader's price
    assert first["exec_price"] == "0.001"
    assert first["outcome"] == "CAPPED"
    assert Decimal(str(first["exec_shares"])) == Decimal("20000")  # $20 at 0.001
    assert second["exec_price"] == "0.01"
    assert wide["outcome"] == "SKIPPED"
    assert wide["reasons"] == ["EXEC_SLIPPAGE_LIMIT"]
    assert nobook["exec_price"] == "0.4"
    assert nobook["outcome"] == "EXECUTED"

    plain = run(tmp_path / "plain.jsonl")
    assert [d["exec_price"] for d in plain] == ["0.5", "0.4", "0.005", "0.005", "0.012"]
    again = run(tmp_path / "again.jsonl", "--book-dir", str(books))
    assert again == with_books
    assert (tmp_path / "again.jsonl").read_bytes() == (tmp_path / "books.jsonl").read_bytes()


def test_unreadable_book_file_is_a_clean_error(tmp_path: Path, capsys: object) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    config = tmp_path / "c.yaml"
    config.write_text(f"leaders:\n  - address: '{LEADER}'\n")
    tape = tmp_path / "t.json"
    tape.write_text("[]")
    code = main(
        [
            "replay",
            "--config",
            str(config),
            "--tape",
            str(tape),
            "--out",
            str(tmp_path / "o"),
            "--book-dir",
            str(tmp_path),
        ]
    )
    assert code == 1


def _config(tmp_path: Path, rate: str = "0.1") -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        "bankroll_usdc: 200\n"
        f"sizing: {{fixed_copy_rate_default: {rate}}}\n"
        f"leaders:\n  - address: '{LEADER}'\n    name: lead\n"
    )
    return config


def test_a_book_file_without_a_timestamp_is_malformed_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    books = tmp_path / "books"
    books.mkdir()
    real = json.loads((SHARED / "ra1nty__polymarket-cli__book.json").read_text())
    (books / "fine.json").write_text(json.dumps(real))
    (books / "undated.json").write_text(
        json.dumps({k: v for k, v in real.items() if k != "timestamp"})
    )
    tape = tmp_path / "t.json"
    tape.write_text("[]")
    code = main(
        [
            "replay",
            "--config",
            str(_config(tmp_path)),
            "--tape",
            str(tape),
            "--out",
            str(tmp_path / "o"),
            "--book-dir",
            str(books),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "undated.json" in err  # which file …
    assert "timestamp" in err  # … and what is wrong with it; never a silent ts 0
    assert "fine.json" not in err


def test_two_trades_on_the_same_recorded_book_both_see_it_undepleted(tmp_path: Path) -> None:
    books = tmp_path / "books"
    books.mkdir()
    token, t_book = "777", 1_767_000_000_000
    (books / "one.json").write_text(
        json.dumps(
            {
                "market": "0x" + "cd" * 32,
                "asset_id": token,
                "timestamp": str(t_book),
                "hash": "",
                "bids": [{"price": "0.48", "size": "100"}],
                "asks": [{"price": "0.50", "size": "30"}],  # 30 shares: not enough for both
                "min_order_size": "5",
                "tick_size": "0.01",
                "neg_risk": False,
            }
        )
    )
    tape = tmp_path / "tape.json"
    first, second = t_book // 1000 + 1, t_book // 1000 + 2  # both after the one book
    tape.write_text(
        json.dumps(
            [_trade(token, first, "0.50", "100", 1), _trade(token, second, "0.50", "100", 2)]
        )
    )
    out = tmp_path / "out.jsonl"
    code = main(
        [
            "replay",
            "--config",
            str(_config(tmp_path, rate="0.2")),  # $10 each: 20 shares at 0.50
            "--tape",
            str(tape),
            "--out",
            str(out),
            "--book-dir",
            str(books),
        ]
    )
    assert code == 0
    decisions = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["outcome"] for d in decisions] == ["EXECUTED", "EXECUTED"]
    assert [Decimal(str(d["exec_shares"])) for d in decisions] == [Decimal(20), Decimal(20)]
    assert [d["exec_price"] for d in decisions] == ["0.5", "0.5"]  # the second saw 30, not 10
