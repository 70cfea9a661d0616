"""One command, one run: the fake engine alone, then responsed in front of it, side by side.

    uv run python -m bench.run [--levels 1,16,64] [--tokens 256] [--rate 0] [--out FILE.md]
                               [--paths baseline,openai,builtin,distributed]

Paths measured at each concurrency C:
- `baseline`: the load generator reads the fake engine's Chat Completions stream directly.
- `responsed→openai`: `responsed serve --engine openai` relays the fake engine as a
  Responses stream (embedded: SQLite, in-process worker).
- `responsed builtin`: `responsed serve --engine builtin`, which echoes the prompt itself.
- `responsed distributed`: PostgreSQL + Redis, one `responsed serve --redis-url` API process
  and one `responsed worker --engine openai` relaying the same fake engine.

responsed (and, for the distributed path, PostgreSQL and Redis) runs on core 0; the fake
engine and the load generator (this process) share core 1. Server CPU is utime+stime of the
server process trees (API + worker when distributed) per delta delivered; for the baseline
the columns describe the fake engine instead.

Each level starts with one unmeasured stream per connection (--no-level-warmup: none).
After its levels each responsed path reports how many stored responses are still queued or
in progress, then restarts on the same storage with a full-speed engine, creates one response
of `--resume-events` deltas and times replays of it (GET ?stream=true from the start).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import procstat
from bench.loadgen import LevelResult, Target, default_requests, parse_levels, run_level
from bench.procs import (
    Process,
    StartError,
    log_tail,
    pinning_cores,
    raise_fd_limit,
    start_fake_engine,
)
from bench.resume import ResumeError, ResumeResult, measure_resume
from bench.stacks import DistributedStack, EmbeddedStack, Group, Stack
from bench.stream_client import Mode

BASELINE = "baseline (fake engine)"
VIA_OPENAI = "responsed→openai"
BUILTIN = "responsed builtin"
DISTRIBUTED = "responsed distributed"
# --paths keys, in the order they run: the baseline first, for the ratios.
PATHS = {"baseline": BASELINE, "openai": VIA_OPENAI, "builtin": BUILTIN, "distributed": DISTRIBUTED}
SETTLE_S = 10.0  # how long a response may take to reach its final status after its stream
# Log lines worth a look after a run: a clean run has none.
_LOG_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|^Traceback")


@dataclass
class Row:
    path: str
    result: LevelResult
    cpu_us_per_delta: float
    memory: procstat.Memory
    side_cpu: dict[str, float] = field(default_factory=dict)  # µs/delta, e.g. PostgreSQL


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
    level_warmup: bool
    paths: list[str] = field(default_factory=lambda: list(PATHS))
    resume_events: int = 10_000
    resume_reps: int = 5
    logs_dir: Path | None = None


class PathFailed(Exception):
    """A path could not be measured; the message says why."""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    pinned: bool = False
    left_running: dict[str, str] = field(default_factory=dict)
    resumes: dict[str, ResumeResult] = field(default_factory=dict)
    log_problems: dict[str, list[str]] = field(default_factory=dict)


async def measure_path(name: str, group: Group, mode: Mode, settings: Settings) -> list[Row]:
    """Run every level against one path, sampling its processes' CPU and memory around each."""
    target = Target.build(group.base, mode, settings.model, settings.tokens, settings.tokens)
    if settings.warmup:
        warm = await run_level(target, min(4, settings.warmup), settings.warmup, stream_limit_s=10)
        if warm.ok == 0:
            errors = ", ".join(f"{e} x{n}" for e, n in warm.errors.most_common(3))
            raise PathFailed(f"every warm-up stream failed ({errors})")
    rows = []
    for level in settings.levels:
        cpu_before = group.cpu_seconds()
        side_before = {k: procstat.cpu_seconds(pid) for k, pid in group.side.items()}
        # Paced streams are long: one round per connection, then min_seconds decides.
        requests = settings.requests or (level if settings.rate > 0 else None)
        if settings.level_warmup:
            # One unmeasured stream per connection first: pools fill up to this concurrency
            # (database, Redis, engine connections) and first-use paths run, so the level
            # measures the steady state rather than a cold start.
            await run_level(target, level, level, stream_limit_s=settings.stream_timeout)
            cpu_before = group.cpu_seconds()
            side_before = {k: procstat.cpu_seconds(pid) for k, pid in group.side.items()}
        result = await run_level(
            target,
            level,
            requests,
            stream_limit_s=settings.stream_timeout,
            min_seconds=settings.min_seconds,
            max_seconds=settings.max_seconds,
        )
        exited = group.exited()
        if exited:
            raise PathFailed(exited)
        per_delta = _per_delta(group.cpu_seconds() - cpu_before, result.deltas)
        side = {
            k: _per_delta(procstat.cpu_seconds(pid) - side_before[k], result.deltas)
            for k, pid in group.side.items()
        }
        rows.append(Row(name, result, per_delta, group.memory(), side))
        extra = "".join(f", {k} {v:.1f}" for k, v in side.items())
        print(f"{name:<24} {result.summary()}  cpu {per_delta:.1f}{extra} µs/delta", flush=True)
    return rows


def _per_delta(cpu_s: float, deltas: int) -> float:
    return cpu_s / deltas * 1e6 if deltas else float("nan")


async def measure_responsed(
    name: str,
    make_stack: Callable[[], Awaitable[Stack]],
    args: Sequence[str],
    resume_args: Sequence[str] | None,
    settings: Settings,
    report: Report,
) -> None:
    """Levels, the left-running check, then (restarted with `resume_args`) the resume."""
    try:
        stack = await make_stack()
    except StartError as exc:
        raise PathFailed(str(exc)) from exc
    try:
        try:
            group = await stack.start(args)
            try:
                report.rows += await measure_path(name, group, "responses", settings)
                # Before stopping: a restart would settle leftovers through recovery.
                report.left_running[name] = await _left_running(stack)
            finally:
                await stack.stop()
            if resume_args is not None:
                group = await stack.start(resume_args)
                try:
                    report.resumes[name] = await measure_resume(
                        group.base, settings.model, settings.resume_events, settings.resume_reps
                    )
                finally:
                    await stack.stop()
        except StartError as exc:
            raise PathFailed(str(exc)) from exc
        except ResumeError as exc:  # the levels' rows stay in the report
            raise PathFailed(f"resume: {exc}") from exc
        except PathFailed as exc:
            tails = "\n".join(f"{log.name}:\n{log_tail(log, 20)}" for log in stack.logs[-2:])
            raise PathFailed(f"{exc}\nlog tails:\n{tails}") from exc
        finally:
            problems = [line for log in stack.logs for line in _problem_lines(log)]
            if problems:
                report.log_problems[name] = problems
    finally:
        await stack.close()


async def _left_running(stack: Stack) -> str:
    """The count of responses still queued/in progress, once given SETTLE_S to finish."""
    deadline = time.monotonic() + SETTLE_S
    try:
        while True:
            count = await stack.left_running()
            if count == 0 or time.monotonic() >= deadline:
                return str(count)
            await asyncio.sleep(0.25)
    except Exception as exc:  # any database error: report it rather than lose the path
        return f"unknown ({exc!r})"


def _problem_lines(log: Path) -> list[str]:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [f"{log.name}: {line.strip()[:200]}" for line in lines if _LOG_PROBLEM.search(line)]


async def run(settings: Settings) -> Report:
    cores = pinning_cores()
    server_core, load_core = cores if cores else (None, None)
    if load_core is not None:
        os.sched_setaffinity(0, {load_core})  # the load generator is this process
    raise_fd_limit()
    report = Report(pinned=cores is not None)
    with tempfile.TemporaryDirectory(prefix="responsed-bench-") as tmp:
        workdir = Path(tmp)
        engines: list[Process] = []
        try:
            engine, engine_url = await start_fake_engine(
                settings.rate, settings.tokens, load_core, workdir / "fake-engine.log"
            )
            engines.append(engine)
            if "baseline" in settings.paths:
                try:
                    group = Group(engine_url, [engine])
                    report.rows += await measure_path(BASELINE, group, "engine", settings)
                except PathFailed as exc:
                    print(f"{BASELINE}: {exc}", file=sys.stderr, flush=True)
                    report.failures[BASELINE] = _one_line(str(exc))
            resume_url = ""
            if settings.resume_events and {"openai", "distributed"} & set(settings.paths):
                # The long response needs its own engine: as long as asked, at full speed.
                resume_engine, resume_url = await start_fake_engine(
                    0, settings.resume_events, load_core, workdir / "resume-engine.log"
                )
                engines.append(resume_engine)
            await _measure_responsed_paths(
                settings, report, workdir, server_core, engine_url, resume_url
            )
        finally:
            for process in engines:
                await process.stop()
            if settings.logs_dir is not None:  # the work directory goes away with the run
                _copy_logs(workdir, settings.logs_dir)
    return report


def _copy_logs(workdir: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, dest / log.name)


async def _measure_responsed_paths(
    settings: Settings,
    report: Report,
    workdir: Path,
    core: int | None,
    engine_url: str,
    resume_url: str,
) -> None:
    async def embedded() -> Stack:
        return EmbeddedStack(workdir, core)

    async def distributed() -> Stack:
        return await DistributedStack.create(workdir, core)

    builtin_args = ["--engine", "builtin"]
    if settings.rate > 0:
        builtin_args += ["--builtin-rate", f"{settings.rate:g}"]
    via_openai = ["--engine", "openai", "--engine-url", engine_url]
    resume_openai = ["--engine", "openai", "--engine-url", resume_url]
    paths: dict[str, tuple[Callable[[], Awaitable[Stack]], list[str], list[str]]] = {
        "openai": (embedded, via_openai, resume_openai),
        "builtin": (embedded, builtin_args, ["--engine", "builtin"]),
        "distributed": (distributed, via_openai, resume_openai),
    }
    for key, (make_stack, args, resume_args) in paths.items():
        if key not in settings.paths:
            continue
        name = PATHS[key]
        try:
            await measure_responsed(
                name,
                make_stack,
                args,
                resume_args if settings.resume_events else None,
                settings,
                report,
            )
        except PathFailed as exc:
            print(f"{name}: {exc}", file=sys.stderr, flush=True)
            report.failures[name] = _one_line(str(exc))


def _one_line(message: str) -> str:
    """The first line of a failure and, when there is a log tail, its last line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0].rstrip(":") + (f" ({lines[-1]})" if len(lines) > 1 else "")


def markdown(report: Report, settings: Settings) -> str:
    rows = report.rows
    baseline = {r.result.concurrency: r.result for r in rows if r.path == BASELINE}
    paced = settings.rate > 0
    rate = f"{settings.rate:g} tokens/s per stream" if paced else "unlimited"
    placement = (
        "responsed (with PostgreSQL and Redis when distributed) on core 0, "
        "fake engine and load generator on core 1"
        if report.pinned
        else "unpinned"
    )
    lines = [
        f"{settings.tokens} deltas per stream, engine rate {rate}; {placement}. "
        "Baseline CPU and RSS are the fake engine's; distributed CPU and RSS are API + worker.",
        "",
        "| path | C | deltas/s | vs baseline | TTFT p50 (ms) | TTFT p99 (ms) "
        "| inter-delta p99 / max (ms) |"
        + (" added inter-delta p99 (ms) |" if paced else "")
        + " server CPU (µs/delta) | server RSS / peak (MiB) | streams ok/failed |",
        "|---|--:|--:|--:|--:|--:|--:|" + ("--:|" if paced else "") + "--:|--:|--:|",
    ]
    for row in rows:
        r = row.result
        base = baseline.get(r.concurrency)
        ratio = "n/a"
        if base and base.deltas_per_s:
            ratio = f"{r.deltas_per_s / base.deltas_per_s:.2f}x"
        added = ""
        if paced:
            # The gap a client notices on top of the engine's own pacing, at the same C.
            extra = "-" if row.path == BASELINE else "n/a"
            if base and row.path != BASELINE:
                extra = f"{r.gap_ms(99) - base.gap_ms(99):+.2f}"
            added = f" {extra} |"
        lines.append(
            f"| {row.path} | {r.concurrency} | {r.deltas_per_s:,.0f} | {ratio} "
            f"| {r.ttft_ms(50):.1f} | {r.ttft_ms(99):.1f} "
            f"| {r.gap_ms(99):.2f} / {r.gaps.max() * 1000:.1f} |{added}"
            f" {row.cpu_us_per_delta:.1f} | {row.memory.rss_mib:.0f} / "
            f"{row.memory.peak_mib:.0f} | {r.ok}/{r.failed} |"
        )
    lines += _side_table(rows)
    if report.left_running:
        lines += ["", "Stored responses still queued/in_progress after the levels:", ""]
        lines += [f"- {name}: left running: {n}" for name, n in report.left_running.items()]
    if report.resumes:
        lines += [
            "",
            f"Resume of a {settings.resume_events:,}-event response "
            f"(GET ?stream=true from the start, median of {settings.resume_reps}):",
            "",
            "| path | events replayed | first event (ms) | last event (ms) |",
            "|---|--:|--:|--:|",
        ]
        lines += [
            f"| {name} | {r.events:,} | {r.first_ms:.1f} | {r.last_ms:.1f} |"
            for name, r in report.resumes.items()
        ]
    if report.log_problems:
        lines.append("")
        for name, found in report.log_problems.items():
            lines.append(
                f"- {name}: {len(found)} warning/error line(s) in its logs, first: {found[0]}"
            )
    if report.failures:
        lines.append("")
        lines += [f"- {name}: not measured: {why}" for name, why in report.failures.items()]
    return "\n".join(lines) + "\n"


def _side_table(rows: list[Row]) -> list[str]:
    """CPU of the distributed path's PostgreSQL and Redis, not in its server CPU."""
    sided = [row for row in rows if row.side_cpu]
    if not sided:
        return []
    names = list(sided[0].side_cpu)
    lines = [
        "",
        "| path | C | " + " | ".join(f"{n} CPU (µs/delta)" for n in names) + " |",
        "|---|--:|" + "--:|" * len(names),
    ]
    for row in sided:
        cells = " | ".join(f"{row.side_cpu.get(n, float('nan')):.1f}" for n in names)
        lines.append(f"| {row.path} | {row.result.concurrency} | {cells} |")
    return lines


def parse_paths(text: str) -> list[str]:
    keys = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(keys) - set(PATHS))
    if not keys or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown path(s) {', '.join(unknown) or '(none)'}; choose from {','.join(PATHS)}"
        )
    return [key for key in PATHS if key in keys]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=parse_levels, default=[1, 16, 64])
    parser.add_argument(
        "--paths",
        type=parse_paths,
        default=list(PATHS),
        help=f"comma-separated, from {','.join(PATHS)} (default: all)",
    )
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
    parser.add_argument(
        "--no-level-warmup",
        dest="level_warmup",
        action="store_false",
        help="measure each level from a cold start (default: one unmeasured stream per "
        "connection first)",
    )
    parser.add_argument(
        "--resume-events",
        type=int,
        default=10_000,
        help="deltas of the response whose replay is timed (0: skip the resume)",
    )
    parser.add_argument("--resume-reps", type=int, default=5, help="replays; the median counts")
    parser.add_argument("--out", type=Path, help="also write the markdown table to this file")
    parser.add_argument("--logs", type=Path, help="copy every process's log into this directory")
    args = parser.parse_args(argv)
    if args.resume_reps < 1 or args.resume_events < 0:
        parser.error("--resume-reps must be >= 1 and --resume-events >= 0")
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
        level_warmup=args.level_warmup,
        paths=args.paths,
        resume_events=args.resume_events,
        resume_reps=args.resume_reps,
        logs_dir=args.logs,
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
