"""A job as a queue entry carries: the API hands the worker what it already has in memory,
so starting a run costs the worker one claim instead of a claim and four reads."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from domain.builder import ResponseBuilder
from domain.engine import EngineRequest
from domain.ports import Claim
from worker.job import Job

MAX_PAYLOAD = 256 * 1024  # larger requests (images as data URLs) are read from the store


def encode_job(job: Job) -> bytes | None:
    if not job.portable:
        return None
    payload = orjson.dumps(
        {
            "response": job.builder.response,
            "next_seq": job.builder.next_seq,
            "engine_request": dataclasses.asdict(job.engine_request),
            "owner": job.owner,
            "seal_reasoning": job.seal_reasoning,
            "compact": job.compact,
            "then_request": dataclasses.asdict(job.then_request) if job.then_request else None,
            "summary_at": job.summary_at,
        }
    )
    return payload if len(payload) <= MAX_PAYLOAD else None


def decode_job(response_id: str, payload: bytes, claim: Claim) -> Job | None:
    """The carried job, if it still describes the stored log (nobody appended since)."""
    data: dict[str, Any] = orjson.loads(payload)
    if claim.last_seq != data["next_seq"] - 1:
        return None  # it moved on (a takeover, a duplicate entry): rebuild from the store
    builder = ResponseBuilder(data["response"], next_seq=data["next_seq"])
    return Job(
        response_id,
        builder,
        EngineRequest(**data["engine_request"]),
        epoch=claim.epoch,
        owner=data["owner"],
        seal_reasoning=data["seal_reasoning"],
        compact=data.get("compact", ""),
        then_request=EngineRequest(**data["then_request"]) if data.get("then_request") else None,
        summary_at=data.get("summary_at", 0),
    )
