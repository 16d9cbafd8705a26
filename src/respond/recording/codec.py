"""How responses are stored: plain JSON, typed objects wrapped as {"__type__": ..., "__data__": {...}}.

`to_plain` turns whatever a live callable returned (dicts, pydantic models, dataclasses) into JSON data.
`encode` wraps it with the response type; `decode` unwraps it back to the plain dicts replay returns.
"""

from __future__ import annotations

import dataclasses
from typing import Any

CHAT_COMPLETION = "openai.types.chat.chat_completion.ChatCompletion"
CHAT_COMPLETION_CHUNK = "openai.types.chat.chat_completion_chunk.ChatCompletionChunk"
EMBEDDINGS = "openai.types.create_embedding_response.CreateEmbeddingResponse"
MODEL = "openai.types.model.Model"
MODEL_INFO = "respond.inference.base.ModelInfo"


def to_plain(value: Any) -> Any:
    """JSON-able data for `value`: dicts and lists walked, pydantic models and dataclasses dumped, bytes decoded."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return to_plain(dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain(dataclasses.asdict(value))
    raise TypeError(f"cannot record a value of type {type(value).__name__}")


def _wrap(value: Any, response_type: str | None) -> Any:
    return {"__type__": response_type, "__data__": value} if response_type else value


def encode(value: Any, response_type: str | None) -> Any:
    """Stored form of one response (plain data); a list is stored as a list of typed objects."""
    if isinstance(value, list):
        return [_wrap(v, response_type) for v in value]
    return _wrap(value, response_type)


def _is_typed(value: Any) -> bool:
    return isinstance(value, dict) and "__type__" in value and "__data__" in value and len(value) == 2


def decode(stored: Any) -> Any:
    """The plain data of a stored response (the `__data__`, exactly as recorded)."""
    if _is_typed(stored):
        return stored["__data__"]
    if isinstance(stored, list):
        return [v["__data__"] if _is_typed(v) else v for v in stored]
    return stored
