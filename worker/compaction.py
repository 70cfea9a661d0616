"""The summarising run of a compaction: the engine writes the summary, which is sealed into a
compaction item. Nothing of the summary is streamed: the item carries it sealed, whole."""

from __future__ import annotations

from typing import Protocol

from domain.compaction import summary_message
from domain.engine import EngineRequest, Finish, TextDelta
from domain.errors import EngineError
from domain.ports import Engine
from service import metrics
from worker.job import Job

COMPACTIONS = {
    kind: metrics.Counter(f"responsed_compactions_{kind}_total", help_)
    for kind, help_ in (
        ("compact", "Compactions asked with POST /v1/responses/compact."),
        ("trigger", "Compactions asked by a compaction_trigger input item."),
        ("auto", "Compactions made because an input passed its context_management threshold."),
    )
}
for _counter in COMPACTIONS.values():
    metrics.register(_counter)


class SummarySealer(Protocol):
    def seal_summary(self, summary: str, owner: str) -> str: ...


async def summarise(engine: Engine, request: EngineRequest) -> tuple[str, Finish]:
    """The engine's summary (its text; reasoning and tool calls are not part of it)."""
    parts: list[str] = []
    finish: Finish | None = None
    async for chunk in engine.stream(request):
        if type(chunk) is TextDelta:
            parts.append(chunk.text)
        elif type(chunk) is Finish:
            finish = chunk
            break
    summary = "".join(parts).strip()
    if finish is None:
        raise EngineError("The engine stream ended without a finish reason.")
    if not summary:
        raise EngineError("The engine wrote an empty summary: nothing to compact into.")
    return summary, finish


async def run_compaction(engine: Engine, sealer: SummarySealer | None, job: Job) -> Finish:
    """Writes the compaction item into the job's builder; for "auto" jobs, makes the job's
    engine request the generation from the compacted input."""
    if sealer is None:
        raise EngineError("Compaction needs the server's encryption key, and none is set.")
    summary, finish = await summarise(engine, job.engine_request)
    job.builder.compaction(sealer.seal_summary(summary, job.owner))
    COMPACTIONS[job.compact].inc()
    if job.compact == "auto" and job.then_request is not None:
        job.then_request.messages.insert(job.summary_at, summary_message(summary))
        job.engine_request = job.then_request
    return finish
