"""A provider for any OpenAI-compatible `/v1` API (OpenAI, vLLM, Ollama, llama.cpp server, ...).

Bodies go out as-is (orjson), results come back as plain dicts. The streaming path is the hot path: the SSE
body is split into lines on raw bytes and each `data:` payload is parsed once with orjson (no pydantic, no
text decoding of the whole stream).

Every failure becomes an `UpstreamError`: connect errors and timeouts, non-2xx answers (with the upstream's
status and message, read from its error envelope when it has one), `error` payloads inside a stream, and a
stream that ends without `[DONE]` or a `finish_reason` (cut mid-way).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from respond.config import ProviderConfig
from respond.errors import UpstreamError
from respond.inference.base import ModelInfo
from respond.jsonutil import dumpb, loads

log = logging.getLogger(__name__)

# The server must carry ~256 concurrent streams per upstream without queueing on the pool.
POOL_LIMITS = httpx.Limits(max_connections=1024, max_keepalive_connections=256, keepalive_expiry=30.0)
OPENAI_BASE_URL = "https://api.openai.com/v1"  # when a provider of type 'openai' sets no base_url
CONNECT_TIMEOUT = 10.0
DISCOVERY_TIMEOUT = 10.0
DISCOVERY_RETRY_SECONDS = 30.0


def _looks_like_embedding(model_id: str) -> bool:
    return "embed" in model_id.lower()


class OpenAICompatProvider:
    """`base.Provider` over HTTP. `http` may be shared between providers (the caller then closes it)."""

    def __init__(self, config: ProviderConfig, http: httpx.AsyncClient | None = None) -> None:
        self.id = config.id
        self.config = config
        self.base_url = (config.base_url or OPENAI_BASE_URL).rstrip("/")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if config.api_key:
            self._headers["Authorization"] = f"Bearer {config.api_key}"
        self._stream_headers = {**self._headers, "Accept": "text/event-stream"}
        timeout = httpx.Timeout(config.timeout, connect=min(CONNECT_TIMEOUT, config.timeout))
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout, limits=POOL_LIMITS)
        self._timeout = timeout
        self._models: list[ModelInfo] | None = None
        self._discovery_failed_at: float | None = None

    # -- models -----------------------------------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        """Configured models, else the upstream's `/models` (cached; [] with a warning when unreachable)."""
        if self.config.models is not None:
            return self._configured_models()
        if self._models is not None:
            return self._models
        if self._discovery_failed_at is not None and time.monotonic() - self._discovery_failed_at < DISCOVERY_RETRY_SECONDS:
            return self._embedding_only()
        try:
            resp = await self._http.get(f"{self.base_url}/models", headers=self._headers,
                                        timeout=min(DISCOVERY_TIMEOUT, self.config.timeout))
            if resp.status_code >= 300:
                raise self._status_error(resp.status_code, resp.content)
            data = loads(resp.content).get("data") or []
        except (httpx.HTTPError, UpstreamError, ValueError, AttributeError) as exc:
            log.warning("provider '%s': model discovery at %s/models failed: %s", self.id, self.base_url, exc)
            self._discovery_failed_at = time.monotonic()
            return self._embedding_only()
        embedding = set(self.config.embedding_models)
        models = [ModelInfo(id=m["id"], kind="embedding" if m["id"] in embedding or _looks_like_embedding(m["id"])
                            else "llm", owned_by=m.get("owned_by") or self.id, created=int(m.get("created") or 0))
                  for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
        seen = {m.id for m in models}
        models += [ModelInfo(id=m, kind="embedding", owned_by=self.id) for m in self.config.embedding_models
                   if m not in seen]
        self._models = models
        return models

    def _configured_models(self) -> list[ModelInfo]:
        llms = [ModelInfo(id=m, kind="embedding" if m in self.config.embedding_models else "llm", owned_by=self.id)
                for m in self.config.models or []]
        seen = {m.id for m in llms}
        return llms + [ModelInfo(id=m, kind="embedding", owned_by=self.id)
                       for m in self.config.embedding_models if m not in seen]

    def _embedding_only(self) -> list[ModelInfo]:
        return [ModelInfo(id=m, kind="embedding", owned_by=self.id) for m in self.config.embedding_models]

    # -- chat completions -------------------------------------------------------------------------------

    async def chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("stream"):
            body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        result = await self._post_json("/chat/completions", body)
        return result

    async def chat_completion_stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yield `ChatCompletionChunk` dicts. Closing the generator early closes the upstream response."""
        if not body.get("stream"):
            body = {**body, "stream": True}
        url = f"{self.base_url}/chat/completions"
        request = self._http.build_request("POST", url, content=dumpb(body), headers=self._stream_headers,
                                           timeout=self._timeout)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        try:
            if response.status_code >= 300:
                raw = await self._read(response)
                raise self._status_error(response.status_code, raw)
            ctype = response.headers.get("content-type", "")
            if "text/event-stream" not in ctype and "json" in ctype:
                # An upstream that ignored `stream: true`: replay its completion as chunks.
                raw = await self._read(response)
                for chunk in completion_to_chunks(self._parse_body(raw)):
                    yield chunk
                return
            done = False
            finished = False
            decoder = SSEDecoder()
            try:
                async for piece in response.aiter_bytes():
                    for data in decoder.feed(piece):
                        if data == b"[DONE]":
                            done = True
                            break
                        chunk = self._parse_event(data)
                        if not finished:
                            for choice in chunk.get("choices") or ():
                                if choice.get("finish_reason"):
                                    finished = True
                        yield chunk
                    if done:
                        break
            except httpx.HTTPError as exc:
                raise self._transport_error(exc, during_stream=True) from exc
            if not done:
                data = decoder.flush()
                if data == b"[DONE]":
                    done = True
                elif data is not None:
                    chunk = self._parse_event(data)
                    finished = finished or any(c.get("finish_reason") for c in chunk.get("choices") or ())
                    yield chunk
            if not done and not finished:
                raise UpstreamError(
                    f"Upstream provider '{self.id}' closed the stream before it finished (no [DONE] and no "
                    "finish_reason).", code="upstream_stream_incomplete")
        finally:
            await response.aclose()

    def _parse_event(self, data: bytes) -> dict[str, Any]:
        try:
            obj = loads(data)
        except ValueError as exc:
            raise UpstreamError(f"Upstream provider '{self.id}' sent an invalid stream event: {data[:200]!r}",
                                code="upstream_invalid_response") from exc
        if not isinstance(obj, dict):
            raise UpstreamError(f"Upstream provider '{self.id}' sent an invalid stream event: {data[:200]!r}",
                                code="upstream_invalid_response")
        if "error" in obj and obj["error"] and not obj.get("choices"):
            raise self._payload_error(obj, status=None)
        return obj

    # -- embeddings -------------------------------------------------------------------------------------

    async def embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._post_json("/embeddings", body)

    # -- plumbing ---------------------------------------------------------------------------------------

    async def _post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.post(f"{self.base_url}{path}", content=dumpb(body), headers=self._headers,
                                             timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        if response.status_code >= 300:
            raise self._status_error(response.status_code, response.content)
        return self._parse_body(response.content)

    def _parse_body(self, raw: bytes) -> dict[str, Any]:
        try:
            obj = loads(raw)
        except ValueError as exc:
            raise UpstreamError(f"Upstream provider '{self.id}' returned a body that is not JSON: {raw[:200]!r}",
                                code="upstream_invalid_response") from exc
        if not isinstance(obj, dict):
            raise UpstreamError(f"Upstream provider '{self.id}' returned an unexpected body: {raw[:200]!r}",
                                code="upstream_invalid_response")
        if obj.get("error") and not obj.get("choices") and not obj.get("data"):
            raise self._payload_error(obj, status=None)
        return obj

    async def _read(self, response: httpx.Response) -> bytes:
        try:
            return await response.aread()
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc

    def _transport_error(self, exc: httpx.HTTPError, during_stream: bool = False) -> UpstreamError:
        where = f"{self.base_url}"
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamError(f"Upstream provider '{self.id}' timed out ({type(exc).__name__}) at {where}.",
                                 code="upstream_timeout")
        if isinstance(exc, httpx.ConnectError):
            return UpstreamError(f"Upstream provider '{self.id}' is unreachable at {where}: {exc or type(exc).__name__}",
                                 code="upstream_unreachable")
        if during_stream:
            return UpstreamError(f"Upstream provider '{self.id}' broke the stream: {exc or type(exc).__name__}",
                                 code="upstream_stream_incomplete")
        return UpstreamError(f"Upstream provider '{self.id}' request failed: {exc or type(exc).__name__}",
                             code="upstream_error")

    def _status_error(self, status: int, raw: bytes) -> UpstreamError:
        try:
            obj: Any = loads(raw) if raw else None
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            return self._payload_error(obj, status=status)
        text = raw[:500].decode("utf-8", "replace").strip() or httpx.codes.get_reason_phrase(status)
        return UpstreamError(f"Upstream provider '{self.id}' returned HTTP {status}: {text}",
                             upstream_status=status, body=text)

    def _payload_error(self, obj: dict[str, Any], status: int | None) -> UpstreamError:
        """Read an error envelope in any of the usual shapes: OpenAI, vLLM, Ollama, FastAPI `detail`."""
        err = obj.get("error")
        message: Any = None
        code: Any = None
        param: Any = None
        if isinstance(err, dict):
            message, code, param = err.get("message"), err.get("code"), err.get("param")
            if status is None and isinstance(err.get("code"), int):
                status = err["code"]
        elif isinstance(err, str):
            message = err
        if message is None:
            message = obj.get("message") or obj.get("detail")
        if status is None and isinstance(obj.get("code"), int):
            status = obj["code"]
        if not isinstance(message, str):
            message = str(message) if message is not None else "unknown error"
        where = f"HTTP {status}" if status else "an error"
        return UpstreamError(
            f"Upstream provider '{self.id}' returned {where}: {message}",
            upstream_status=status if isinstance(status, int) else None,
            code=code if isinstance(code, str) and code else "upstream_error",
            param=param if isinstance(param, str) else None,
            body=obj,
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()


class SSEDecoder:
    """Splits an event-stream body, fed in arbitrary pieces, into the `data` payloads of its events.

    Works on bytes (no text decoding); an event's `data:` lines are joined with newlines; `event:`, `id:`,
    `retry:` fields and `:` comments are skipped; CRLF and LF line ends both work.
    """

    __slots__ = ("_tail", "_pending")

    def __init__(self) -> None:
        self._tail = b""
        self._pending: bytes | None = None

    def feed(self, piece: bytes) -> list[bytes]:
        lines = (self._tail + piece).split(b"\n") if self._tail else piece.split(b"\n")
        self._tail = lines.pop()
        events: list[bytes] = []
        pending = self._pending
        for line in lines:
            if line.startswith(b"data:"):
                data = line[5:].strip()
                pending = data if pending is None else pending + b"\n" + data
            elif (not line or line == b"\r") and pending is not None:
                events.append(pending)
                pending = None
        self._pending = pending
        return events

    def flush(self) -> bytes | None:
        """The last event when the body ended without its blank line (or None)."""
        last = self._tail.strip()
        self._tail = b""
        pending = self._pending
        if last.startswith(b"data:"):
            data = last[5:].strip()
            pending = data if pending is None else pending + b"\n" + data
        self._pending = None
        return pending


def completion_to_chunks(completion: dict[str, Any]) -> list[dict[str, Any]]:
    """A `ChatCompletion` as the equivalent `ChatCompletionChunk` sequence (content, tool calls, usage)."""
    base = {"id": completion.get("id", ""), "object": "chat.completion.chunk",
            "created": completion.get("created", 0), "model": completion.get("model", "")}
    chunks: list[dict[str, Any]] = []
    for choice in completion.get("choices") or []:
        msg = choice.get("message") or {}
        delta: dict[str, Any] = {"role": msg.get("role", "assistant"), "content": msg.get("content")}
        if msg.get("refusal"):
            delta["refusal"] = msg["refusal"]
        if msg.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **tc} for i, tc in enumerate(msg["tool_calls"])]
        idx = choice.get("index", 0)
        chunks.append({**base, "choices": [{"index": idx, "delta": delta, "finish_reason": None}]})
        chunks.append({**base, "choices": [{"index": idx, "delta": {},
                                            "finish_reason": choice.get("finish_reason") or "stop"}]})
    if completion.get("usage"):
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return chunks
