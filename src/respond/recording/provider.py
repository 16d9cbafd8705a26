"""RecordingProvider: any inference Provider, with every call routed through a Recorder.

Requests are described as the OpenAI wire calls they are (`POST {base_url}/chat/completions`, endpoint
`/v1/chat/completions`, ...), so recordings look the same whichever backend produced them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from respond.inference.base import ModelInfo, Provider, one_per_batch
from respond.recording.codec import CHAT_COMPLETION, CHAT_COMPLETION_CHUNK, EMBEDDINGS, MODEL_INFO
from respond.recording.context import use_test_id
from respond.recording.recorder import OutboundRequest, Recorder


def _model_info(value: Any) -> ModelInfo:
    if isinstance(value, ModelInfo):
        return value
    return ModelInfo(**{k: value[k] for k in ("id", "kind", "owned_by", "created", "metadata") if k in value})


class RecordingProvider:
    """Implements `respond.inference.base.Provider` by wrapping `inner`; other attributes are the inner's."""

    def __init__(self, inner: Provider, recorder: Recorder, base_url: str) -> None:
        self.inner = inner
        self.recorder = recorder
        self.base_url = base_url.rstrip("/")
        self.id = inner.id
        self.config = getattr(inner, "config", None)
        recorder.add_secret(getattr(getattr(inner, "config", None), "api_key", None))

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _request(self, method: str, path: str, body: Any) -> OutboundRequest:
        model = body.get("model") if isinstance(body, dict) else None
        return OutboundRequest(method=method, url=f"{self.base_url}{path}", endpoint=f"/v1{path}", body=body,
                               headers={}, model=model)

    async def list_models(self) -> list[ModelInfo]:
        config = self.config
        if config is not None and (config.type == "local" or config.models is not None):
            return await self.inner.list_models()  # configured: no outbound call to record
        with use_test_id(None):  # the model list is shared by all tests: one recording, whoever asks first
            result = await self.recorder.call(self._request("GET", "/models", None), self.inner.list_models,
                                              response_type=MODEL_INFO)
        return [_model_info(m) for m in result]

    async def chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.recorder.call(self._request("POST", "/chat/completions", body),
                                        lambda: self.inner.chat_completion(body), response_type=CHAT_COMPLETION)

    def chat_completion_stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        # The wire request of a stream always says so; record it that way whatever the caller passed.
        wire = body if body.get("stream") is True else {**body, "stream": True}
        return self.recorder.stream(self._request("POST", "/chat/completions", wire),
                                    lambda: self.inner.chat_completion_stream(body),
                                    response_type=CHAT_COMPLETION_CHUNK)

    def chat_completion_batches(self, body: dict[str, Any]) -> AsyncIterator[list[dict[str, Any]]]:
        return one_per_batch(self.chat_completion_stream(body))

    async def embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.recorder.call(self._request("POST", "/embeddings", body),
                                        lambda: self.inner.embeddings(body), response_type=EMBEDDINGS)

    async def aclose(self) -> None:
        await self.inner.aclose()
