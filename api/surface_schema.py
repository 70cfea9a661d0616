"""Reply shapes of the compact and models endpoints (openai/types/responses/
compacted_response.py, response_compaction_item.py; openai/types/model.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schema import Item, Usage


class CompactionItem(BaseModel):
    """A compaction item: the summary, sealed; sent back as input, it stands for what it
    summarised."""

    id: str
    type: Literal["compaction"]
    encrypted_content: str


class CompactedResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    object: Literal["response.compaction"]
    created_at: int
    output: list[Item | CompactionItem] = Field(
        description="The input's user messages, then one compaction item."
    )
    usage: Usage


class Model(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    context_window: int | None = Field(
        None, description="The engine's context length, where the engine tells it."
    )


class ModelList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    data: list[Model]
