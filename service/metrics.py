"""Prometheus metrics: a few counters and histograms, rendered in the text exposition format.

Small and dependency-free on purpose: updating one is an attribute increment on the hot path.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable


class Counter:
    def __init__(self, name: str, help_: str) -> None:
        self.name, self.help, self.value = name, help_, 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def render(self) -> list[str]:
        return [
            f"# HELP {self.name} {self.help}",
            f"# TYPE {self.name} counter",
            f"{self.name} {self.value:g}",
        ]


class Gauge:
    def __init__(self, name: str, help_: str, read: Callable[[], float]) -> None:
        self.name, self.help, self.read = name, help_, read

    def render(self) -> list[str]:
        return [
            f"# HELP {self.name} {self.help}",
            f"# TYPE {self.name} gauge",
            f"{self.name} {self.read():g}",
        ]


class Histogram:
    def __init__(self, name: str, help_: str, buckets: tuple[float, ...]) -> None:
        self.name, self.help, self.buckets = name, help_, buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        running = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            lines.append(f'{self.name}_bucket{{le="{bound:g}"}} {running}')
        running += self.counts[-1]
        lines += [
            f'{self.name}_bucket{{le="+Inf"}} {running}',
            f"{self.name}_sum {self.total:g}",
            f"{self.name}_count {running}",
        ]
        return lines


EVENTS_APPENDED = Counter("responsed_events_appended_total", "Events committed to the store.")
BATCH_EVENTS = Histogram(
    "responsed_append_batch_events",
    "Events per committed transaction.",
    (1, 4, 16, 64, 256, 1024, 4096),
)
TTFT = Histogram(
    "responsed_ttft_seconds",
    "Time from a run's start to its first delta.",
    (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ENGINE_ERRORS = Counter("responsed_engine_errors_total", "Runs ended by an engine error.")
JOBS_RECLAIMED = Counter(
    "responsed_jobs_reclaimed_total", "Queue entries taken over from silent workers."
)
RESPONSES = Counter("responsed_responses_total", "Runs finished by this process.")

_gauges: list[Gauge] = []
_registered: list[Counter | Histogram] = []


def register(metric: Counter | Histogram) -> None:
    """Add a metric defined in another module to the exposition."""
    if metric not in _registered:
        _registered.append(metric)


def gauge(name: str, help_: str, read: Callable[[], float]) -> None:
    """Register a gauge read at scrape time (replacing one of the same name)."""
    _gauges[:] = [g for g in _gauges if g.name != name]
    _gauges.append(Gauge(name, help_, read))


def render() -> str:
    lines: list[str] = []
    for metric in (EVENTS_APPENDED, BATCH_EVENTS, TTFT, ENGINE_ERRORS, JOBS_RECLAIMED, RESPONSES,
                   *_registered, *_gauges):
        lines += metric.render()
    return "\n".join(lines) + "\n"
