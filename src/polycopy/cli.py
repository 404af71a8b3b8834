"""Command line: argument parsing and exit codes only. The work lives in the modules it calls.

Exit codes: 0 success, 1 runtime failure, 2 usage error, 78 invalid configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from polycopy import __version__
from polycopy.config import DEFAULT_CONFIG_PATH, ConfigError, LoadedConfig, load_config

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 78  # EX_CONFIG


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except ConfigError as exc:
        _print_config_error(exc)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polycopy", description="Copy-trade Polymarket wallets with per-leader budgets."
    )
    parser.add_argument("--version", action="version", version=f"polycopy {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = commands.add_parser("run", help="the daemon: copy the configured leaders")
    _add_config(run)
    run.set_defaults(handler=_run)

    check = commands.add_parser(
        "check-config", help="validate a config and show each leader's settings"
    )
    _add_config(check)
    check.set_defaults(handler=_check_config)

    replay = commands.add_parser(
        "replay", help="backtest recorded leader trades through the policy"
    )
    _add_config(replay, required=True)
    replay.add_argument(
        "--tape",
        action="append",
        required=True,
        type=Path,
        metavar="FILE",
        help="leader tape: Data API /activity or /trades JSON, JSONL or CSV (repeatable)",
    )
    replay.add_argument(
        "--positions",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a /positions snapshot setting a leader's starting exposure (repeatable)",
    )
    replay.add_argument(
        "--markets",
        type=Path,
        metavar="FILE",
        help="per-market rules: JSON {token_id: {tick_size, min_order_notional, size_step}}",
    )
    replay.add_argument(
        "--book-dir",
        type=Path,
        metavar="DIR",
        help="recorded /book JSON responses (one per file): fill by walking the latest book "
        "at or before each trade instead of at the leader's price",
    )
    replay.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="FILE.jsonl",
        help="where to write one decision per line",
    )
    replay.add_argument(
        "--summary-json",
        type=Path,
        metavar="FILE",
        help="also write the per-leader summary as JSON",
    )
    replay.set_defaults(handler=_replay)

    demo = commands.add_parser(
        "demo", help="the design's $200 example end to end, offline, against the simulator"
    )
    demo.add_argument(
        "--out-dir",
        type=Path,
        default=Path("demo-out"),
        help="where the demo writes its ledger, logs and decisions (default: demo-out)",
    )
    demo.add_argument("--seed", type=int, default=7, help="seed of the synthetic leader activity")
    demo.add_argument(
        "--seconds", type=float, default=40.0, help="how long the daemon runs (default: 40)"
    )
    demo.add_argument(
        "--replay-only",
        action="store_true",
        help="only the side-by-side replay comparison (no simulator, no daemon)",
    )
    demo.set_defaults(handler=_demo)

    status = commands.add_parser("status", help="dashboard of a running daemon")
    status.add_argument(
        "--url",
        default="http://127.0.0.1:9464",
        help="the daemon's status server (default: http://127.0.0.1:9464)",
    )
    status.add_argument(
        "--watch", type=float, metavar="SECONDS", help="refresh every SECONDS until Ctrl-C"
    )
    status.add_argument("--json", action="store_true", help="print the raw /status JSON")
    status.set_defaults(handler=_status)
    for name, verb in (("halt", "stop all trading"), ("resume", "lift a halt")):
        command = commands.add_parser(
            name, help=f"kill switch: {verb} (POST /{name}, with POLYCOPY_STATUS_TOKEN)"
        )
        command.add_argument("--url", default="http://127.0.0.1:9464", help="status server")
        command.add_argument("--reason", default=f"operator {name}", help="recorded with it")
        if name == "halt":
            command.add_argument(
                "--reducing",
                action="store_true",
                help="REDUCING instead of HALTED: no new buys, exits still mirrored",
            )
        if name == "resume":
            command.add_argument(
                "--offline",
                action="store_true",
                help="the daemon is stopped: reset the halt in the ledger file of --config",
            )
            _add_config(command)
        command.set_defaults(handler=_kill_switch, verb=name)
    _add_sim(commands)
    return parser


def _add_sim(commands: Any) -> None:
    from polycopy.sim.settings import DATA_API_LAG_S, DEFAULT_PORT, RTDS_LAG_S

    sim = commands.add_parser("sim", help="the simulated Polymarket (tests, rehearsals)")
    sim_commands = sim.add_subparsers(title="sim commands", metavar="COMMAND")
    serve = sim_commands.add_parser(
        "serve", help="serve the simulated Polymarket on 127.0.0.1 until interrupted"
    )
    source = serve.add_mutually_exclusive_group()
    source.add_argument(
        "--tape",
        action="append",
        type=Path,
        metavar="FILE",
        help="replay leader trades from a Data API /activity or /trades tape (repeatable)",
    )
    source.add_argument(
        "--generate",
        type=int,
        metavar="SEED",
        help="generate leader trades: three small leaders and a whale, from this seed",
    )
    serve.add_argument(
        "--speed", type=float, default=1.0, help="divide the tape's gaps by X (default 1)"
    )
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    serve.add_argument(
        "--paused", action="store_true", help="wait for POST /_sim/start before playing"
    )
    serve.add_argument(
        "--rtds-lag",
        type=float,
        default=RTDS_LAG_S,
        metavar="S",
        help=f"seconds before a trade reaches RTDS (default {RTDS_LAG_S})",
    )
    serve.add_argument(
        "--data-lag",
        type=float,
        default=DATA_API_LAG_S,
        metavar="S",
        help=f"seconds before a trade shows in the Data API (default {DATA_API_LAG_S})",
    )
    serve.add_argument(
        "--firehose",
        type=float,
        default=5.0,
        metavar="N",
        help="trades per second of other wallets on RTDS (default 5)",
    )
    serve.add_argument("--seed", type=int, default=0, help="seed of the simulator's own choices")
    serve.set_defaults(handler=_sim_serve)


def _add_config(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        required=required,
        default=None if required else DEFAULT_CONFIG_PATH,
        metavar="PATH",
        help=f"YAML configuration (default: {DEFAULT_CONFIG_PATH})",
    )


def _print_config_error(exc: ConfigError) -> None:
    print("polycopy: invalid configuration", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def _print_warnings(config: LoadedConfig) -> None:
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)


# --- handlers -------------------------------------------------------------------------------
def _run(args: argparse.Namespace) -> int:
    import os

    from polycopy.daemon import run
    from polycopy.observability.logging import configure_logging, get_logger
    from polycopy.store.db import StoreError

    configure_logging(
        os.environ.get("POLYCOPY_LOG_LEVEL", "INFO"), os.environ.get("POLYCOPY_LOG_FORMAT")
    )
    try:
        return run(args.config)
    except ConfigError:
        raise
    except StoreError as exc:
        get_logger("polycopy.daemon").error("ledger_unusable", error=str(exc))
        return EXIT_FAILURE
    except Exception:
        get_logger("polycopy.daemon").exception("daemon_failed")
        return EXIT_FAILURE


def _check_config(args: argparse.Namespace) -> int:
    from polycopy.report import effective_settings_table

    config = load_config(args.config)
    _print_warnings(config)
    print(effective_settings_table(config))
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    from polycopy.execution.book_source import BookDirectory
    from polycopy.execution.book_walk import BookError
    from polycopy.replay import Fill, book_fill, fill_at_last_price, load_markets, replay
    from polycopy.report import summary_table
    from polycopy.tapes import TapeError

    config = load_config(args.config)
    _print_warnings(config)
    try:
        markets = load_markets(args.markets)
        fill: Fill = fill_at_last_price
        if args.book_dir is not None:
            books = BookDirectory.load(args.book_dir)
            fill = book_fill(books, config.settings.execution.order_type.value)
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            out = args.out.open("w", encoding="utf-8")
        except OSError as exc:
            raise TapeError(f"{args.out}: cannot write the decisions: {exc.strerror}") from None
        with out:
            result = replay(
                config, args.tape, out, positions=args.positions, markets=markets, fill=fill
            )
    except (TapeError, BookError) as exc:
        print(f"polycopy: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    for problem in result.stats.problems:
        print(f"skipped row: {problem}", file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(summary_table(result))
    if args.summary_json:
        import json

        args.summary_json.write_text(
            json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8"
        )
    return EXIT_OK


def _kill_switch(args: argparse.Namespace) -> int:
    import json
    import os
    import urllib.error
    import urllib.request

    if getattr(args, "offline", False):
        from datetime import UTC, datetime

        from polycopy.store.daemon_state import DaemonState
        from polycopy.store.db import Database
        from polycopy.store.ledger import ledger_path

        settings = load_config(args.config).settings
        path = ledger_path(settings.state_dir, settings.mode)
        if not path.exists():
            print(f"polycopy: no ledger at {path}", file=sys.stderr)
            return EXIT_FAILURE
        db = Database(path)
        try:
            state = DaemonState(db)
            now = datetime.now(UTC)
            before = state.kill_switch()
            state.save_kill_switch(before.resume(now), now)
        finally:
            db.close()
        print(
            f"trading state reset to ACTIVE in {path} (was {before.state.value}"
            f"{': ' + before.reason if before.reason else ''})"
        )
        return EXIT_OK
    token = os.environ.get("POLYCOPY_STATUS_TOKEN")
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    payload = {"reason": args.reason}
    if getattr(args, "reducing", False):
        payload["state"] = "REDUCING"
    body = json.dumps(payload).encode()
    url = f"{args.url.rstrip('/')}/{args.verb}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            print(json.dumps(json.loads(response.read())))
    except urllib.error.HTTPError as exc:
        hint = "" if token else " (set POLYCOPY_STATUS_TOKEN)"
        print(f"polycopy: {url}: HTTP {exc.code}{hint}", file=sys.stderr)
        return EXIT_FAILURE
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"polycopy: cannot reach {url}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    import json
    import os
    import time
    import urllib.error
    import urllib.request

    from polycopy.observability.dashboard import render

    url = args.url.rstrip("/") + "/status"
    headers = {}
    token = os.environ.get("POLYCOPY_STATUS_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    while True:
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - operator's URL
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                status = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            print(f"polycopy: cannot read {url}: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        if args.json:
            print(json.dumps(status, indent=2))
        else:
            if args.watch:
                print("\033[2J\033[H", end="")
            print(render(status))
        if not args.watch:
            return EXIT_OK
        time.sleep(args.watch)


def _sim_serve(args: argparse.Namespace) -> int:
    import asyncio

    from polycopy.sim.server import serve
    from polycopy.sim.settings import SimConfig
    from polycopy.tapes import TapeError

    try:
        config = SimConfig(
            port=args.port,
            seed=args.seed,
            tapes=tuple(args.tape or ()),
            generate_seed=args.generate,
            speed=args.speed,
            paused=args.paused,
            rtds_lag_s=args.rtds_lag,
            data_api_lag_s=args.data_lag,
            firehose_per_s=args.firehose,
        )
    except ValueError as exc:
        print(f"polycopy: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        asyncio.run(serve(config, lambda banner: print(banner, flush=True)))
    except TapeError as exc:
        print(f"polycopy: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"polycopy: cannot serve on port {args.port}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from polycopy.demo import run_demo, run_replay_demo

    if args.replay_only:
        print(run_replay_demo(args.out_dir, seed=args.seed))
    else:
        print(run_demo(args.out_dir, seconds=args.seconds, seed=args.seed))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
