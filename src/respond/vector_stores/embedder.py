"""Embeddings for ingestion and search, through the router's provider (so the embedded model runs wherever
its provider runs it, and the `RecordingProvider` records/replays the calls)."""

from __future__ import annotations

import base64
import struct
from typing import Any

from respond.errors import InvalidRequest
from respond.inference.router import Router

BATCH = 64  # texts per embeddings request


class Embedder:
    def __init__(self, router: Router) -> None:
        self.router = router

    async def check(self, model: str, param: str = "embedding_model") -> None:
        try:
            await self.router.aresolve(model)
        except InvalidRequest as exc:
            raise InvalidRequest(f"Unknown embedding model '{model}': {exc.message}", param=param,
                                 code="model_not_found") from None

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        provider, upstream_model = await self.router.aresolve(model)
        out: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            batch = texts[start:start + BATCH]
            result = await provider.embeddings({"model": upstream_model, "input": batch})
            data = sorted(result.get("data") or [], key=lambda d: d.get("index", 0))
            if len(data) != len(batch):
                raise ValueError(f"the embedding model returned {len(data)} vectors for {len(batch)} inputs")
            out.extend(_vector(d["embedding"]) for d in data)
        return out


def _vector(value: Any) -> list[float]:
    if isinstance(value, str):  # base64 float32
        raw = base64.b64decode(value)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return [float(x) for x in value]
