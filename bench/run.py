"""One command, one run: the fake engine alone, then responsed in front of it, side by side.

    uv run python -m bench.run [--levels 1,16,64] [--tokens 256] [--rate 0] [--out FILE.md]

Paths measured at each concurrency C:
- `baseline`: the load generator reads the fake engine's Chat Completions stream directly.
- `responsed→openai`: `responsed serve --engine openai` relays the fake engine as a
  Responses stream.
- `responsed builtin`: `responsed serve --engine builtin`, which echoes the prompt itself.

The server runs on core 0; the fake engine and the load generator (this process) share
core 1. Server CPU is utime+stime of the server process tree per delta delivered; for the
baseline the columns describe the fake engine instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import procstat
from bench.loadgen import LevelResult, Target, default_requests, parse_levels, run_level
from bench.procs import (
    Process,
    StartError,
    log_tail,
    pinning_cores,
    start_fake_engine,
    start_server,
)
from bench.stream_client import Mode

BASELINE = "baseline (fake engine)"
VIA_OPENAI = "responsed→openai"
BUILTIN = "responsed builtin"


@dataclass
class Row:
    path: str
    result: LevelResult
    cpu_us_per_delta: float
    memory: procstat.Memory


@dataclass
class Settings:
    levels: list[int]
    tokens: int
    rate: float
    requests: int | None
    model: str
    stream_timeout: float
    min_seconds: float
    max_seconds: float
    warmup: int


class PathFailed(Exception):
    """A path could not be measured; the message says why."""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    pinned: bool = False


async def measure_path(
    name: str, base: str, mode: Mode, process: Process, settings: Settings
) -> list[Row]:
    """Run every level against one path, sampling the process's CPU and memory around each."""
    target = Target.build(base, mode, settings.model, settings.tokens, settings.tokens)
    if settings.warmup:
        warm = await run_level(target, min(4, settings.warmup), settings.warmup, stream_limit_s=10)
        if warm.ok == 0:
            errors = ", ".join(f"{e} x{n}" for e, n in warm.errors.most_common(3))
            raise PathFailed(f"every warm-up stream failed ({errors})")
    rows = []
    for level in settings.levels:
        cpu_before = procstat.cpu_seconds(process.pid)
        # Paced streams are long: one round per connection, then min_seconds decides.
        requests = settings.requests or (level if settings.rate > 0 else None)
        result = await run_level(
            target,
            level,
            requests,
            stream_limit_s=settings.stream_timeout,
            min_seconds=settings.min_seconds,
            max_seconds=settings.max_seconds,
        )
        if process.proc.returncode is not None:
            raise PathFailed(f"the process exited with status {process.proc.returncode}")
        cpu = procstat.cpu_seconds(process.pid) - cpu_before
        per_delta = cpu / result.deltas * 1e6 if result.deltas else float("nan")
        rows.append(Row(name, result, per_delta, procstat.memory(process.pid)))
        print(f"{name:<24} {result.summary()}  cpu {per_delta:.1f} µs/delta", flush=True)
    return rows


async def measure_server(
    name: str, server_args: Sequence[str], core: int | None, workdir: Path, settings: Settings
) -> list[Row]:
    """Start a fresh server (new data directory), measure it, stop it."""
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=workdir))
    log = workdir / f"server-{data_dir.name}.log"
    try:
        server, base = await start_server(["--data-dir", str(data_dir), *server_args], core, log)
    except StartError as exc:
        raise PathFailed(str(exc)) from exc
    try:
        return await measure_path(name, base, "responses", server, settings)
    except PathFailed as exc:
        raise PathFailed(f"{exc}\nserver log tail:\n{log_tail(log)}") from exc
    finally:
        await server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def run(settings: Settings) -> Report:
    cores = pinning_cores()
    server_core, load_core = cores if cores else (None, None)
    if load_core is not None:
        os.sched_setaffinity(0, {load_core})  # the load generator is this process
    report = Report(pinned=cores is not None)
    with tempfile.TemporaryDirectory(prefix="responsed-bench-") as tmp:
        workdir = Path(tmp)
        engine, engine_url = await start_fake_engine(
            settings.rate, settings.tokens, load_core, workdir / "fake-engine.log"
        )
        try:
            report.rows += await measure_path(BASELINE, engine_url, "engine", engine, settings)
            builtin_args = ["--engine", "builtin"]
            if settings.rate > 0:
                builtin_args += ["--builtin-rate", f"{settings.rate:g}"]
            paths = {
                VIA_OPENAI: ["--engine", "openai", "--engine-url", engine_url],
                BUILTIN: builtin_args,
            }
            for name, server_args in paths.items():
                try:
                    report.rows += await measure_server(
                        name, server_args, server_core, workdir, settings
                    )
                except PathFailed as exc:
                    print(f"{name}: {exc}", file=sys.stderr, flush=True)
                    report.failures[name] = _one_line(str(exc))
        finally:
            await engine.stop()
    return report


def _one_line(message: str) -> str:
    """The first line of a failure and, when there is a log tail, its last line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0].rstrip(":") + (f" ({lines[-1]})" if len(lines) > 1 else "")


def markdown(report: Report, settings: Settings) -> str:
    rows = report.rows
    baseline = {r.result.concurrency: r.result.deltas_per_s for r in rows if r.path == BASELINE}
    rate = f"{settings.rate:g} tokens/s per stream" if settings.rate > 0 else "unlimited"
    placement = (
        "server on core 0, fake engine and load generator on core 1"
        if report.pinned
        else "unpinned"
    )
    lines = [
        f"{settings.tokens} deltas per stream, engine rate {rate}; {placement}. "
        "Baseline CPU and RSS are the fake engine's.",
        "",
        "| path | C | deltas/s | vs baseline | TTFT p50 (ms) | TTFT p99 (ms) "
        "| inter-delta p99 / max (ms) | server CPU (µs/delta) | server RSS / peak (MiB) "
        "| streams ok/failed |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        r = row.result
        base = baseline.get(r.concurrency)
        ratio = f"{r.deltas_per_s / base:.2f}x" if base else "n/a"
        lines.append(
            f"| {row.path} | {r.concurrency} | {r.deltas_per_s:,.0f} | {ratio} "
            f"| {r.ttft_ms(50):.1f} | {r.ttft_ms(99):.1f} "
            f"| {r.gap_ms(99):.2f} / {r.gaps.max() * 1000:.1f} "
            f"| {row.cpu_us_per_delta:.1f} | {row.memory.rss_mib:.0f} / "
            f"{row.memory.peak_mib:.0f} | {r.ok}/{r.failed} |"
        )
    if report.failures:
        lines.append("")
        lines += [f"- {name}: not measured: {why}" for name, why in report.failures.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=parse_levels, default=[1, 16, 64])
    parser.add_argument("--tokens", type=int, default=256, help="deltas per stream")
    parser.add_argument("--rate", type=float, default=0, help="engine tokens/s per stream, 0=max")
    parser.add_argument(
        "--requests-per-level",
        type=int,
        help=f"streams per level (default max(64, 4C), e.g. {default_requests(64)} at C=64;"
        " C when --rate is set)",
    )
    parser.add_argument("--model", default="fake")
    parser.add_argument("--stream-timeout", type=float, default=60.0, help="seconds per stream")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="per level")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="per level")
    parser.add_argument("--warmup", type=int, default=8, help="streams before each path")
    parser.add_argument("--out", type=Path, help="also write the markdown table to this file")
    args = parser.parse_args(argv)
    settings = Settings(
        levels=args.levels,
        tokens=args.tokens,
        rate=args.rate,
        requests=args.requests_per_level,
        model=args.model,
        stream_timeout=args.stream_timeout,
        min_seconds=args.min_seconds,
        max_seconds=args.max_seconds,
        warmup=args.warmup,
    )
    try:
        import uvloop
    except ImportError:
        report = asyncio.run(run(settings))
    else:
        report = uvloop.run(run(settings))
    table = markdown(report, settings)
    print("\n" + table, flush=True)
    if args.out:
        args.out.write_text(table)
    if report.failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
