"""The provider interface every inference backend implements.

Bodies and results are plain dicts in OpenAI's wire format (chat completions, chunks, embeddings), so the
hot path never re-validates a pydantic model per token. `body["model"]` is the provider's own model name
(the router strips the `provider/` prefix before calling).

Failures are raised as `respond.errors.UpstreamError` (unreachable, timeout, 5xx, a stream cut mid-way,
or a 4xx the upstream returned), never as raw aiohttp/llama exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from respond.config import ProviderConfig


@dataclass(frozen=True)
class ModelInfo:
    """One model a provider exposes. `id` is the provider's own name (without the `provider/` prefix)."""

    id: str
    kind: str = "llm"  # "llm" or "embedding"
    owned_by: str = "respond"
    created: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    """An inference backend. One instance per configured provider entry."""

    id: str  # the provider id used as the model-id prefix, e.g. "local", "openai", "vllm"
    config: ProviderConfig  # its configuration entry (e.g. max_tokens_field)

    async def list_models(self) -> list[ModelInfo]:
        """The models this provider serves (configured, or discovered from the upstream /v1/models)."""
        ...

    async def chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """A non-streamed chat completion: returns an OpenAI `ChatCompletion` as a dict."""
        ...

    def chat_completion_stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """A streamed chat completion: yields OpenAI `ChatCompletionChunk` dicts.

        `body` is sent with `stream: true`; callers set `stream_options.include_usage` when they want the
        final usage chunk. Closing the iterator early must cancel the upstream request.
        """
        ...

    def chat_completion_batches(self, body: dict[str, Any]) -> AsyncIterator[list[dict[str, Any]]]:
        """The same stream, as lists of the chunks that arrived together (one network read).

        The hot path uses this: the turn loop handles a whole batch and the server writes its events in one
        write, instead of paying one write per token when an upstream sends faster than we forward.
        """
        ...

    async def embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        """An embeddings request: returns an OpenAI `CreateEmbeddingResponse` dict."""
        ...

    async def aclose(self) -> None:
        ...


async def flatten(batches: AsyncIterator[list[dict[str, Any]]]) -> AsyncIterator[dict[str, Any]]:
    """Chunks one by one from a batched stream (closing it early closes the batches too)."""
    try:
        async for batch in batches:
            for chunk in batch:
                yield chunk
    finally:
        await batches.aclose()  # type: ignore[attr-defined]


async def one_per_batch(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[list[dict[str, Any]]]:
    """A chunk stream as batches of one, for providers whose chunks come one at a time anyway."""
    try:
        async for chunk in chunks:
            yield [chunk]
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
