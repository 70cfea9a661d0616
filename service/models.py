"""GET /v1/models: the model names clients may send, in OpenAI's list shape.

They are the model map's names (`--engine-model-map`, the `*` wildcard left out) and what the
engines' own `/v1/models` report, asked at most every `ttl_s` seconds. An engine that does not
answer is left out of that listing; the endpoint answers what it knows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from domain.errors import NotFound

log = logging.getLogger("responsed.models")
BUILTIN_MODEL = "responsed-builtin"  # what the built-in engine lists (it answers to any name)
_OWNER = "responsed"


class ModelCatalog:
    def __init__(
        self,
        model_map: dict[str, str],
        engine_urls: list[str],
        *,
        builtin: bool = False,
        api_key: str = "",
        ttl_s: float = 30.0,
        timeout_s: float = 2.0,
    ) -> None:
        self._map = {k: v for k, v in model_map.items() if k != "*"}
        self._urls = [u.rstrip("/") + "/models" for u in engine_urls]
        self._builtin = builtin
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._created = int(time.time())
        self._engine_models: list[dict[str, Any]] = []
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _engines(self) -> list[dict[str, Any]]:
        """The engines' own listings, cached for ttl_s; whatever answered last time otherwise."""
        if not self._urls or time.monotonic() - self._fetched_at < self._ttl_s:
            return self._engine_models
        async with self._lock:
            if time.monotonic() - self._fetched_at < self._ttl_s:
                return self._engine_models
            async with httpx.AsyncClient(timeout=self._timeout_s, headers=self._headers) as http:
                answers = await asyncio.gather(
                    *(http.get(url) for url in self._urls), return_exceptions=True
                )
            models: list[dict[str, Any]] = []
            for url, answer in zip(self._urls, answers, strict=True):
                try:
                    if isinstance(answer, BaseException):
                        raise answer
                    answer.raise_for_status()
                    models += [m for m in answer.json().get("data") or [] if m.get("id")]
                except Exception as error:  # down, or not a model list: it lists nothing
                    log.warning("engine model list %s: %s", url, error)
            self._engine_models = models
            self._fetched_at = time.monotonic()
            return models

    async def list(self) -> dict[str, Any]:
        engine = {m["id"]: m for m in await self._engines()}
        data: dict[str, dict[str, Any]] = {}
        if self._builtin:
            data[BUILTIN_MODEL] = self._model(BUILTIN_MODEL, None)
        for name, target in self._map.items():
            data[name] = self._model(name, engine.get(target))
        for name, model in engine.items():
            data.setdefault(name, self._model(name, model))
        return {"object": "list", "data": list(data.values())}

    async def retrieve(self, model_id: str) -> dict[str, Any]:
        models: list[dict[str, Any]] = (await self.list())["data"]
        for model in models:
            if model["id"] == model_id:
                return model
        raise NotFound(
            f"The model '{model_id[:200]}' does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )

    def _model(self, name: str, engine: dict[str, Any] | None) -> dict[str, Any]:
        model: dict[str, Any] = {
            "id": name,
            "object": "model",
            "created": self._created,
            "owned_by": _OWNER,
        }
        if engine is not None:
            if isinstance(engine.get("created"), int):
                model["created"] = engine["created"]
            if isinstance(engine.get("owned_by"), str):
                model["owned_by"] = engine["owned_by"]
            # vLLM and SGLang say max_model_len; some servers context_length.
            window = engine.get("max_model_len") or engine.get("context_length")
            if isinstance(window, int):
                model["context_window"] = window
        return model
