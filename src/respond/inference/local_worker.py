"""The embedded models' worker process: `python -m respond.inference.local_worker chat|embed OPTIONS_JSON`.

Native inference (llama.cpp for chat, torch for embeddings) runs here, never in the server's or a library
user's process: a crash (SIGILL from an unsupported instruction, SIGSEGV, the OOM killer) or a hang takes
down this process only. The parent side is `local_process.py`.

Protocol: frames on stdin/stdout, each a 4-byte big-endian length and an orjson object.
- parent -> worker: `{"op": "chat", "id", "job": {...ChatJob fields}}`, `{"op": "embed", "id", "texts"}`,
  `{"op": "load", "id"}` (load the model now), `{"op": "cancel", "id"}` (stop at the next token).
- worker -> parent: `{"ev": "ready"}` once started; then for each request id: `{"ev": "start"}` when work on it begins, `{"ev": "loading"}` /
  `{"ev": "loaded"}` around a model load, then `{"ev": "text", "text"}` per generated piece (chat) or
  `{"ev": "progress"}` per prompt batch evaluated or texts embedded, and one terminal frame: `{"ev": "done", ...}` or
  `{"ev": "error", "kind": "invalid"|"upstream", "message", "param", "code"}`.

Requests are handled one at a time in arrival order on the main thread; a reader thread takes stdin, so a
`cancel` frame lands while a generation runs. EOF on stdin (the parent closed it, or died) ends the process
at once; so does the parent's death (PR_SET_PDEATHSIG). Real stdout is kept for frames only: fd 1 is
pointed at stderr, so whatever native code prints cannot corrupt the protocol.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import logging
import os
import queue
import resource
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from respond.errors import APIError, InvalidRequest, UpstreamError
from respond.inference.local_request import REPEAT_PENALTY, ChatJob
from respond.jsonutil import dumps

log = logging.getLogger("respond.inference.local_worker")

HEADER = struct.Struct(">I")
EMBED_BATCH = 64  # texts per encode call; a `progress` frame after each keeps the inactivity clock fresh
_PR_SET_PDEATHSIG = 1


def encode_frame(obj: Any) -> bytes:
    payload = orjson.dumps(obj)
    return HEADER.pack(len(payload)) + payload


def read_frame(stream: BinaryIO) -> dict[str, Any] | None:
    """The next frame from a blocking stream, or None at EOF."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return orjson.loads(payload)


def job_payload(job: ChatJob) -> dict[str, Any]:
    """A ChatJob as sent to the worker (everything but the parent-side cancel flag)."""
    return {"model": job.model, "messages": job.messages, "sampling": job.sampling, "max_tokens": job.max_tokens,
            "stop": job.stop, "json_schema": job.json_schema, "json_mode": job.json_mode,
            "forced_tool": job.forced_tool}


# -- the engines (only ever loaded in a worker process) ----------------------------------------------------

_CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


class LlamaEngine:
    """A loaded GGUF model plus its chat formatter."""

    def __init__(self, model_path: Path, n_ctx: int) -> None:
        from llama_cpp import Llama
        from llama_cpp import llama_chat_format as chat_format

        self.llm = Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=os.cpu_count() or 1,
                         n_batch=512, verbose=False)
        self.n_ctx = n_ctx
        self.whole_batches = 0  # leading whole prompt batches in the KV cache (see evaluate_prompt)
        self.reused_tokens = 0  # prompt tokens the last request took from the cache
        vocab_eos = self.llm.token_eos()
        eos = self.llm._model.token_get_text(vocab_eos) if vocab_eos != -1 else ""
        vocab_bos = self.llm.token_bos()
        bos = self.llm._model.token_get_text(vocab_bos) if vocab_bos != -1 else ""
        template = self.llm.metadata.get("tokenizer.chat_template") or _CHATML_TEMPLATE
        self.formatter = chat_format.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                                                         stop_token_ids=[vocab_eos])

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

    def evaluate_prompt(self, tokens: list[int], job: ChatJob, progress: Callable[[], None]) -> bool:
        """Put the prompt in the KV cache, batch by batch of `n_batch` tokens counted from its start; then
        create_completion samples from its logits at once. False if the job was cancelled meanwhile.

        A cached batch is reused only when it was a whole batch of exactly these tokens: llama.cpp's kernels
        round differently for different batch shapes (a 512-token batch vs the last token alone, as
        llama-cpp-python's own prefix reuse evaluates it), so anything else could change a greedy answer
        depending on what ran before. The parent hears of each batch: a long prompt on a slow machine is
        progress, not a hang.
        """
        size = self.llm.n_batch
        limit = min(self.whole_batches, (len(tokens) - 1) // size)  # the last batch is always evaluated
        reuse = 0
        while reuse < limit and self.llm.input_ids[reuse * size:(reuse + 1) * size].tolist() == \
                tokens[reuse * size:(reuse + 1) * size]:
            reuse += 1
        self.llm.reset()
        self.whole_batches = reuse
        self.llm.n_tokens = reuse * size
        self.reused_tokens = reuse * size
        for start in range(reuse * size, len(tokens), size):
            if job.cancelled.is_set():
                return False
            self.llm.eval(tokens[start:start + size])
            if start + size <= len(tokens):
                self.whole_batches += 1
            progress()
        return True

    def generate(self, job: ChatJob, emit: Callable[[str], None],
                 progress: Callable[[], None]) -> tuple[str, int, int]:
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
        if not self.evaluate_prompt(prompt_tokens, job, progress):
            return "stop", len(prompt_tokens), 0
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


def default_gguf_path() -> Path:
    from respond.inference.local import default_gguf_path as find

    return find()


def load_llama(options: dict[str, Any]) -> LlamaEngine:
    path = Path(options["model_path"]).expanduser() if options.get("model_path") else default_gguf_path()
    if not path.is_file():
        raise UpstreamError(f"The local model file '{path}' does not exist.", code="local_model_unavailable")
    try:
        return LlamaEngine(path, int(options.get("n_ctx") or 8192))
    except Exception as exc:
        raise UpstreamError(f"The local model '{path.name}' failed to load: {exc}",
                            code="local_model_unavailable") from exc


def load_embedder(options: dict[str, Any]) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from respond.inference.local import default_embedding_path

    path = default_embedding_path()
    try:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except Exception as exc:
        raise UpstreamError(f"The local embedding model failed to load: {exc}",
                            code="local_model_unavailable") from exc


# -- the worker ------------------------------------------------------------------------------------------

class Worker:
    def __init__(self, kind: str, options: dict[str, Any], out: BinaryIO) -> None:
        self.kind = kind
        self.options = options
        self.out = out
        self.write_lock = threading.Lock()
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.cancelled: set[int] = set()  # ids cancelled before or while they run
        self.running: ChatJob | None = None
        self.running_id: int | None = None
        self.cancel_lock = threading.Lock()
        self.model: Any = None

    def send(self, obj: dict[str, Any]) -> None:
        frame = encode_frame(obj)
        with self.write_lock:
            self.out.write(frame)
            self.out.flush()

    # reader thread
    def read_stdin(self, stream: BinaryIO) -> None:
        while True:
            try:
                frame = read_frame(stream)
            except Exception:  # noqa: BLE001 - a broken pipe is EOF
                frame = None
            if frame is None:  # the parent closed our stdin or died: nothing left to do
                os._exit(0)
            if frame.get("op") == "cancel":
                with self.cancel_lock:
                    self.cancelled.add(frame["id"])
                    if self.running_id == frame["id"] and self.running is not None:
                        self.running.cancelled.set()
            else:
                self.inbox.put(frame)

    # main thread
    def serve(self) -> None:
        while True:
            request = self.inbox.get()
            rid = request["id"]
            self.send({"id": rid, "ev": "start"})
            try:
                result = self.handle(request)
            except APIError as exc:
                kind = "invalid" if isinstance(exc, InvalidRequest) else "upstream"
                self.send({"id": rid, "ev": "error", "kind": kind, "message": exc.message, "param": exc.param,
                           "code": exc.code})
            except Exception as exc:  # noqa: BLE001 - reported to the parent, the worker goes on
                log.exception("local: %s worker: request failed", self.kind)
                what = "model" if self.kind == "chat" else "embedding model"
                self.send({"id": rid, "ev": "error", "kind": "upstream", "message": f"The local {what} failed: "
                           f"{exc}", "param": None, "code": "local_model_error"})
            else:
                self.send({"id": rid, "ev": "done", **result})
            finally:
                with self.cancel_lock:
                    self.cancelled.discard(rid)
                    self.running, self.running_id = None, None

    def ensure_model(self, rid: int) -> Any:
        if self.model is None:
            self.send({"id": rid, "ev": "loading"})
            started = time.monotonic()
            self.model = load_llama(self.options) if self.kind == "chat" else load_embedder(self.options)
            log.info("local: %s worker (pid %d) loaded its model in %.1fs", self.kind, os.getpid(),
                     time.monotonic() - started)
            self.send({"id": rid, "ev": "loaded"})
        return self.model

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        rid, op = request["id"], request.get("op")
        if op == "load":
            self.ensure_model(rid)
            return {}
        if op == "chat" and self.kind == "chat":
            job = ChatJob(**request["job"])
            with self.cancel_lock:
                if rid in self.cancelled:
                    return {"finish": "stop", "prompt_tokens": 0, "completion_tokens": 0}
                self.running, self.running_id = job, rid
            engine = self.ensure_model(rid)

            def emit(text: str) -> None:
                self.send({"id": rid, "ev": "text", "text": text})

            def progress() -> None:
                self.send({"id": rid, "ev": "progress"})

            finish, prompt_tokens, completion_tokens = engine.generate(job, emit, progress)
            return {"finish": finish, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                    "cached_tokens": engine.reused_tokens}
        if op == "embed" and self.kind == "embed":
            return self.embed(rid, request["texts"])
        raise UpstreamError(f"The local {self.kind} worker cannot handle '{op}'.", code="local_model_error")

    def embed(self, rid: int, texts: list[str]) -> dict[str, Any]:
        """Normalized float32 vectors, all in one little-endian buffer (base64), and the token count."""
        import numpy as np

        model = self.ensure_model(rid)
        parts = []
        for start in range(0, len(texts), EMBED_BATCH):
            batch = texts[start:start + EMBED_BATCH]
            parts.append(model.encode(batch, batch_size=32, convert_to_numpy=True, normalize_embeddings=True,
                                      show_progress_bar=False))
            if start + EMBED_BATCH < len(texts):
                self.send({"id": rid, "ev": "progress"})
        vectors = np.concatenate(parts).astype("<f4", copy=False)
        encoded = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)
        return {"count": int(vectors.shape[0]), "dimensions": int(vectors.shape[1]),
                "vectors": base64.b64encode(vectors.tobytes()).decode(),
                "tokens": sum(len(ids) for ids in encoded["input_ids"])}


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL us when the parent goes; exit now if it already went."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent and os.getppid() != parent:
        os._exit(0)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("chat", "embed"):
        sys.exit("usage: python -m respond.inference.local_worker chat|embed OPTIONS_JSON")
    kind, options = args[0], orjson.loads(args[1])
    # OpenMP threads that spin while waiting (libgomp's default) stall llama.cpp ~10x when the cores are busy
    # with other work (measured: 40 tokens in 23-26 s vs 2.4-3.1 s with 2 threads on a loaded 2-core box)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _die_with_parent(int(options.get("parent") or 0))
    # a crash must not write a core file the size of the model wherever the server was started
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    memory_mb = options.get("memory_mb")
    if memory_mb:
        limit = int(memory_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from respond.logs import setup_logging

    setup_logging(options.get("log_level") or "info", options.get("log_format") or "json")
    # fd 1 carries frames only: keep a private copy of it, and send anything else written to fd 1 to stderr
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on the server's terminal: the parent decides
    worker = Worker(kind, options, out)
    worker.send({"ev": "ready"})
    threading.Thread(target=worker.read_stdin, args=(sys.stdin.buffer,), name="stdin", daemon=True).start()
    worker.serve()


if __name__ == "__main__":
    main()
