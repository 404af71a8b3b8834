"""Kill -9 at named points between intent commit, send and fill record; restart; repeat.

Several chains run in parallel, each a live copier (real SDK, throwaway key) in real child
processes (see runner.py). Every run is killed at a randomly chosen crash point and visit count
until the chain has taken its share of kill points (plus one real SIGKILL while the venue holds
a POST unanswered); a last run finishes the tape. Then the venue and the SQLite files must
agree: at most one accepted order per decision, every venue fill recorded exactly once,
positions equal to the fills, nothing left open, and the canary key nowhere.

The seed is printed; `POLYCOPY_CRASH_SEED=<seed>` replays a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from sim_rig import eventually, one_certificate

from polycopy.sim import AcceptThenHang, SimServer

D = Decimal
RUNNER = Path(__file__).with_name("runner.py")
CRASH_POINTS = (
    "after_intent_commit",
    "after_commit_before_post",
    "after_post_before_response",
    "after_response_before_fill_record",
    "after_fill_record",
)
CHAINS = 4
KILLS_PER_CHAIN = 13  # 4 × 13 = 52 randomised kill points (plus one SIGKILL per chain)
TRADES_PER_CHAIN = 40


@dataclass
class Chain:
    index: int
    key: str
    signer: str
    state_dir: Path
    log_path: Path
    trades: list[dict[str, Any]]
    kills: Counter[str] = field(default_factory=Counter)
    runs: int = 0


def tape(rng: random.Random, chain: int, tokens: list[tuple[str, str]]) -> list[dict[str, Any]]:
    trades = []
    held: dict[str, int] = defaultdict(int)
    for i in range(TRADES_PER_CHAIN):
        token, condition = tokens[rng.randrange(len(tokens))]
        if held[token] > 0 and rng.random() < 0.3:
            side, size = "SELL", rng.randint(1, held[token])
            held[token] -= size
            price = "0.48"
        else:
            side, size = "BUY", rng.randint(4, 40)
            held[token] += size
            price = "0.50"
        trades.append(
            {
                "asset": token,
                "condition_id": condition,
                "side": side,
                "price": price,
                "size": str(size),
                "ts": 1_790_000_000 + i,
                "tx": "0x" + f"{chain:08x}{i:056x}",
            }
        )
    return trades


class Zygote:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, key: str, ca_file: Path) -> Zygote:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLYCOPY_")}
        env["POLYCOPY_PRIVATE_KEY"] = key
        env["SSL_CERT_FILE"] = str(ca_file)  # loopback http only: no TLS is ever made
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(RUNNER),
            "--zygote",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        return cls(process)

    async def run(self, command: dict[str, Any]) -> tuple[int, int]:
        """Start one child; returns (pid, exit status) once it ended."""
        pid = await self.started(command)
        return pid, await self.exit_status()

    async def started(self, command: dict[str, Any]) -> int:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()
        return int((await self._line())["pid"])

    async def exit_status(self) -> int:
        return int((await self._line())["exit"])

    async def _line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=60)
        assert line, "the zygote died"
        return dict(json.loads(line))

    async def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        await asyncio.wait_for(self.process.wait(), timeout=10)


def command(sim: SimServer, chain: Chain, crash_at: str | None) -> dict[str, Any]:
    chain.runs += 1
    return {
        "state_dir": str(chain.state_dir),
        "clob_url": sim.url,
        "crash_at": crash_at,
        "trades": chain.trades,
        "log_path": str(chain.log_path),
        "result_path": str(chain.state_dir / f"result-{chain.runs}.json"),
        "order_timeout_s": 2,
    }


async def sigkill_while_the_venue_holds_the_answer(
    sim: SimServer, chain: Chain, zygote: Zygote
) -> None:
    """A real SIGKILL: the venue accepted our POST and holds its answer (the fault is
    venue-wide, so chains take this step one at a time)."""
    fault = sim.faults.arm(AcceptThenHang(close=False))
    pid = await zygote.started(command(sim, chain, None))
    await eventually(lambda: any(o["signer"] == chain.signer for o in sim.orders()), 30)
    os.kill(pid, signal.SIGKILL)
    assert await zygote.exit_status() == -signal.SIGKILL
    sim.faults.clear(fault)
    chain.kills["SIGKILL"] += 1


async def kill_at_random_points(
    sim: SimServer, chain: Chain, zygote: Zygote, rng: random.Random
) -> None:
    first = rng.sample(CRASH_POINTS, len(CRASH_POINTS))  # every point at least once, …
    while sum(chain.kills.values()) - chain.kills["SIGKILL"] < KILLS_PER_CHAIN:
        point = first.pop() if first else rng.choice(CRASH_POINTS)  # … then at random
        crash_at = f"{point}:{rng.randint(1, 2)}"
        _, status = await zygote.run(command(sim, chain, crash_at))
        if status == 137:
            chain.kills[point] += 1
        else:
            assert status == 0, f"run failed, see {chain.log_path}"
            break  # the tape finished before that point was reached
    _, status = await zygote.run(command(sim, chain, None))
    assert status == 0, f"final run failed, see {chain.log_path}"


def check(sim: SimServer, chain: Chain) -> dict[str, int]:
    db = sqlite3.connect(chain.state_dir / "polycopy-live.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    intents = {
        row[0]: row[1:]
        for row in db.execute(
            "SELECT order_hash, decision_id, status FROM ledger_intents"
            " WHERE order_hash IS NOT NULL"
        )
    }
    open_count = db.execute(
        "SELECT count(*) FROM ledger_intents WHERE status NOT IN"
        " ('FILLED', 'CANCELED', 'REJECTED', 'EXPIRED', 'ABANDONED')"
    ).fetchone()[0]
    assert open_count == 0, "an intent was left unresolved"
    orders = [o for o in sim.orders() if o["signer"].lower() == chain.signer.lower()]
    # every order the venue saw has its intent row (it was committed before the POST) …
    assert all(o["order_hash"] in intents for o in orders)
    # … each was posted once, and no decision has more than one accepted order
    assert all(o["received"] == 1 for o in orders)
    per_decision = Counter(intents[o["order_hash"]][0] for o in orders if o["accepted"])
    duplicates = sum(n - 1 for n in per_decision.values() if n > 1)
    assert duplicates == 0, per_decision
    # every venue fill recorded exactly once, with the venue's numbers
    venue_fills = {
        (f["trade_id"], o["order_hash"]): (D(f["size"]), o["side"], o["token_id"])
        for o in orders
        for f in o["fills"]
    }
    ledger_fills = {
        (row[0], row[1]): (D(row[2]), row[3], row[4])
        for row in db.execute(
            "SELECT venue_trade_id, order_hash, shares, side, asset FROM ledger_fills"
        )
    }
    lost = set(venue_fills) - set(ledger_fills)
    assert not lost, f"fills lost: {lost}"
    assert ledger_fills == venue_fills
    # positions equal the fills, and the venue's own account of the shares
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for shares, side, token in venue_fills.values():
        expected[token] += shares if side == "BUY" else -shares
    positions = {
        row[0]: D(row[1]) for row in db.execute("SELECT asset, shares FROM ledger_positions")
    }
    assert positions == {t: s for t, s in expected.items() if s != 0}
    account = sim.state.account(chain.signer)
    assert {t: s for t, s in account.tokens.items() if s != 0} == positions
    # one decision per leader trade
    decided = {row[0] for row in db.execute("SELECT decision_id FROM ledger_decisions")}
    assert len(decided) == TRADES_PER_CHAIN
    # the canary key is nowhere: logs, database, WAL
    raw_key = chain.key[2:].lower()
    for path in [chain.log_path, *chain.state_dir.glob("polycopy-live.sqlite3*")]:
        assert raw_key not in path.read_bytes().decode("latin-1").lower(), path
    db.close()
    return {"orders": len(orders), "fills": len(venue_fills), "duplicates": duplicates, "lost": 0}


async def test_kill_9_at_named_points_never_duplicates_nor_loses(
    sim: SimServer, tmp_path: Path
) -> None:
    seed = int(os.environ.get("POLYCOPY_CRASH_SEED", time.time_ns() % 2**32))
    print(f"crash test seed: {seed} (POLYCOPY_CRASH_SEED={seed} to replay)")
    rng = random.Random(seed)
    tokens = []
    for _ in range(2):
        created = sim.add_market(price=D("0.50"))
        token = created.tokens[0].token_id
        sim.set_book(
            token,
            [(D("0.48"), D("100000")), (D("0.47"), D("100000"))],
            [(D("0.50"), D("7")), (D("0.51"), D("100000"))],  # thin top: multi-level fills
        )
        tokens.append((token, created.condition_id))
    chains = []
    for index in range(CHAINS):
        account = Account.create()
        state_dir = tmp_path / f"chain-{index}"
        state_dir.mkdir()
        chains.append(
            Chain(
                index=index,
                key="0x" + bytes(account.key).hex(),
                signer=account.address,
                state_dir=state_dir,
                log_path=state_dir / "log.jsonl",
                trades=tape(random.Random(rng.random()), index, tokens),
            )
        )
    ca_file = one_certificate(tmp_path)
    zygotes = await asyncio.gather(*(Zygote.start(chain.key, ca_file) for chain in chains))
    try:
        for chain, zygote in zip(chains, zygotes, strict=True):
            await sigkill_while_the_venue_holds_the_answer(sim, chain, zygote)
        rngs = [random.Random(rng.random()) for _ in chains]
        await asyncio.gather(
            *(
                kill_at_random_points(sim, chain, zygote, chain_rng)
                for chain, zygote, chain_rng in zip(chains, zygotes, rngs, strict=True)
            )
        )
    finally:
        for zygote in zygotes:
            await zygote.stop()
    totals: Counter[str] = Counter()
    for chain in chains:
        totals.update(check(sim, chain))
    kills: Counter[str] = Counter()
    for chain in chains:
        kills.update(chain.kills)
    print(f"kill points: {sum(kills.values())} {dict(kills)}; venue: {dict(totals)}")
    assert sum(v for k, v in kills.items() if k != "SIGKILL") >= 50
    assert all(kills[point] >= 1 for point in CRASH_POINTS), kills  # each one exercised
    assert totals["duplicates"] == 0
    assert totals["lost"] == 0
