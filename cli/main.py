"""`responsed serve`, `worker`, `migrate`, `audit`, `keys`, `purge` and `config`. Every setting
is a flag with an environment twin (service/settings.py). `tail` and `show` read a response's
log from a server over HTTP: they take only their own client flags (cli/inspect.py)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys

from cli import audit, config, inspect
from cli.admin import add_key_commands, keys_command, purge_command
from cli.flags import add_setting_flags, settings_from
from service.settings import Settings


def _serve(settings: Settings) -> None:
    import uvicorn

    from api.app import create_app
    from api.http_limits import HttpLimits, guarded_protocol
    from service.runtime import check_store

    check_store(settings)

    app = create_app(settings)
    # Each streamed token allocates a few short-lived dicts; with the default threshold (700)
    # the collector ran so often that it showed in TTFT (measured at C = 64: first-wave TTFT
    # 195 -> 135 ms, throughput +15%). Freezing moves the objects of start-up out of its way.
    gc.set_threshold(100_000, 50, 100)
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        loop="auto",
        http=guarded_protocol(HttpLimits(
            settings.max_headers, settings.max_header_bytes, settings.header_timeout_s,
            settings.body_timeout_s,
        )),
        timeout_graceful_shutdown=5,
    )


def _worker(settings: Settings) -> None:
    import signal

    import uvloop

    from service.runtime import Runtime

    async def run() -> None:
        runtime = await Runtime.start(settings, worker=True)
        assert runtime.worker is not None
        logging.getLogger("responsed").info("worker %s started", runtime.worker.name)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        probe = None
        if settings.metrics_port:
            from worker.probe import serve_probe

            probe = await serve_probe(runtime, settings.host, settings.metrics_port)
        await stop.wait()
        if probe is not None:
            probe.should_exit = True
        await runtime.close()  # hands running responses over to the other workers

    gc.set_threshold(100_000, 50, 100)
    uvloop.run(run())


def _migrate(settings: Settings) -> None:
    from service.runtime import check_store, migrate

    check_store(settings)
    url = settings.resolved_database_url
    asyncio.run(migrate(url))
    print(f"migrated {url.split('@')[-1]}")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="responsed", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API server with its in-process worker")
    add_setting_flags(serve, "serve")
    worker = commands.add_parser(
        "worker", help="distributed mode: take jobs from Redis and generate responses")
    add_setting_flags(worker, "worker")
    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    add_setting_flags(migrate, "migrate")
    audit.add_commands(commands)
    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    for action in add_key_commands(keys):
        add_setting_flags(action, "keys")
    purge = commands.add_parser("purge", help="delete expired responses and audit rows now")
    add_setting_flags(purge, "purge")
    add_setting_flags(config.add_command(commands), "config")
    inspect.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command in inspect.COMMANDS:
        sys.exit(inspect.run(args))  # HTTP clients of a server: no settings of their own
    try:
        settings = settings_from(args)
    except ValueError as error:  # one line naming the flag or variable, no traceback
        sys.exit(f"responsed: {error}")
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "serve":
            _serve(settings)
        elif args.command == "worker":
            _worker(settings)
        elif args.command == "audit":
            sys.exit(audit.run(settings, args))
        elif args.command == "keys":
            sys.exit(asyncio.run(keys_command(settings, args)))
        elif args.command == "purge":
            sys.exit(asyncio.run(purge_command(settings)))
        elif args.command == "config":
            shown = config.markdown_table() if args.markdown else config.effective(settings)
            sys.stdout.write(shown)
        else:
            _migrate(settings)
    except ValueError as error:
        sys.exit(f"responsed: {error}")


if __name__ == "__main__":
    main()
