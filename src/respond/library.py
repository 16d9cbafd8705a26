"""Library mode: an `openai.OpenAI` / `openai.AsyncOpenAI` bound in-process to a Respond app.

No socket, no server: the SDK's HTTP client (httpx2) gets a transport that calls the ASGI app directly.

- `AsyncInProcessTransport` runs the app in the caller's event loop.
- `InProcessTransport` (sync) runs the app on a private event loop in a daemon thread, and bridges each
  request and its streamed body chunk by chunk (streaming stays incremental).

Either way the app's lifespan (its services: database, providers, recorder) starts lazily, once, before the
first request, and stops when the client is closed (`client.close()`, or leaving `with client:`).
Closing a streamed response early tells the app the client went away, exactly as a dropped connection does.
WebSocket mode (`client.responses.connect()`) needs a real server: the SDK opens its own socket for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

import httpx2
import openai

from respond import jsonutil
from respond.config import Config, load_config
from respond.errors import APIError

log = logging.getLogger("respond.library")

BASE_URL = "http://respond.local/v1"
T = TypeVar("T")

_DONE = object()  # the app's task finished (put on an exchange's message queue)
_CLOSE_GRACE = 10.0  # seconds an app request may take to wind down after the client closed it


class AppRunner:
    """Runs one ASGI app in-process, in the event loop it is first used from: lifespan and requests."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._lock: asyncio.Lock | None = None
        self._lifespan: asyncio.Task[None] | None = None
        self._lifespan_inbox: asyncio.Queue[dict[str, Any]] | None = None
        self._lifespan_replies: asyncio.Queue[dict[str, Any]] | None = None
        self.started = False
        self.closed = False

    async def startup(self) -> None:
        if self.started:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.started:
                return
            if self.closed:
                raise RuntimeError("This Respond client is closed.")
            inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            self._lifespan_inbox, self._lifespan_replies = inbox, replies
            scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
            self._lifespan = asyncio.create_task(self._run_lifespan(scope), name="respond-lifespan")
            await inbox.put({"type": "lifespan.startup"})
            reply = await replies.get()
            if reply["type"] != "lifespan.startup.complete":
                raise RuntimeError(f"The Respond app failed to start: {reply.get('message') or reply['type']}")
            self.started = True

    async def _run_lifespan(self, scope: dict[str, Any]) -> None:
        assert self._lifespan_inbox is not None and self._lifespan_replies is not None
        replies = self._lifespan_replies

        async def send(message: dict[str, Any]) -> None:
            await replies.put(message)

        try:
            await self.app(scope, self._lifespan_inbox.get, send)
        except BaseException as exc:
            await replies.put({"type": "lifespan.failed", "message": f"{type(exc).__name__}: {exc}"})
            if not isinstance(exc, Exception):
                raise
        else:
            await replies.put({"type": "lifespan.ended"})

    async def shutdown(self) -> None:
        """Stop the app's services (idempotent)."""
        self.closed = True
        if not self.started or self._lifespan is None:
            return
        self.started = False
        assert self._lifespan_inbox is not None and self._lifespan_replies is not None
        await self._lifespan_inbox.put({"type": "lifespan.shutdown"})
        reply = await self._lifespan_replies.get()
        if reply["type"] != "lifespan.shutdown.complete":
            log.warning("the Respond app did not shut down cleanly: %s", reply.get("message") or reply["type"])
        await asyncio.gather(self._lifespan, return_exceptions=True)

    async def open(self, request: httpx2.Request, body: bytes) -> Exchange:
        """Start one request in the app; returns once the app has sent its response head."""
        await self.startup()
        exchange = Exchange(self, request, body)
        await exchange.start()
        return exchange


class Exchange:
    """One request/response through the app; the body is handed over chunk by chunk as the app sends it."""

    def __init__(self, runner: AppRunner, request: httpx2.Request, body: bytes) -> None:
        url = request.url
        self.scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw], "scheme": url.scheme,
            "path": url.path, "raw_path": url.raw_path.split(b"?")[0], "query_string": url.query,
            "server": (url.host, url.port or 80), "client": ("127.0.0.1", 0), "root_path": "",
            "state": dict(runner.state)}
        self.app = runner.app
        self._body = body
        self._request_done = False
        self._disconnected = asyncio.Event()
        self._messages: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._ended = False
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.error: BaseException | None = None

    async def _receive(self) -> dict[str, Any]:
        if not self._request_done:
            self._request_done = True
            return {"type": "http.request", "body": self._body, "more_body": False}
        await self._disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        # Once the client closed the response, writes are dropped (as a server does on a closed socket);
        # the app learns of it from `http.disconnect` and cancels its work there.
        if not self._disconnected.is_set():
            self._messages.put_nowait(message)

    async def _run(self) -> None:
        try:
            await self.app(self.scope, self._receive, self._send)
        except Exception as exc:  # the app's own handlers already answered when they could
            self.error = exc
            if not self._disconnected.is_set():
                log.exception("the Respond app failed on %s %s", self.scope["method"], self.scope["path"])
        finally:
            self._messages.put_nowait(_DONE)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"respond {self.scope['method']} {self.scope['path']}")
        message = await self._messages.get()
        if message is _DONE or message["type"] != "http.response.start":
            # the app died before answering: answer as a server would, with an error envelope
            self._ended = True
            self.status = 500
            self.headers = [(b"content-type", b"application/json")]
            failure = APIError("The server had an error while processing your request.", code="internal_error")
            self._messages = asyncio.Queue()
            self._messages.put_nowait({"type": "http.response.body", "body": jsonutil.dumpb(failure.envelope())})
            self._messages.put_nowait(_DONE)
            return
        self.status = message["status"]
        self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers") or ()]

    async def next_chunk(self) -> bytes | None:
        """The next piece of the body, or None at its end."""
        while True:
            message = await self._messages.get()
            if message is _DONE:
                self._messages.put_nowait(_DONE)
                if not self._ended and not self._disconnected.is_set():
                    raise httpx2.RemoteProtocolError("The Respond app ended the response before its body was complete.")
                return None
            body = message.get("body", b"")
            if not message.get("more_body", False):
                self._ended = True
            if body:
                return bytes(body)
            if self._ended:
                return None

    async def aclose(self) -> None:
        """The client is done with the response: the app sees a disconnect, and is given time to wind down."""
        self._disconnected.set()
        task = self._task
        if task is None or task.done():
            return
        done, _ = await asyncio.wait({task}, timeout=_CLOSE_GRACE)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


# -- async: the app runs in the caller's event loop ----------------------------------------------------------

class _AsyncBody(httpx2.AsyncByteStream):
    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self.exchange.next_chunk()) is not None:
            yield chunk

    async def aclose(self) -> None:
        await self.exchange.aclose()


class AsyncInProcessTransport(httpx2.AsyncBaseTransport):
    def __init__(self, app: Any) -> None:
        self.runner = AppRunner(app)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        exchange = await self.runner.open(request, await request.aread())
        return httpx2.Response(exchange.status, headers=exchange.headers, stream=_AsyncBody(exchange),
                               request=request)

    async def aclose(self) -> None:
        await self.runner.shutdown()


# -- sync: the app runs on a private event loop in a daemon thread --------------------------------------------

class LoopThread:
    """An event loop running forever in a daemon thread; `run` executes a coroutine there and waits."""

    def __init__(self, name: str = "respond-library") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("LoopThread.run() called from its own loop")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


class _SyncBody(httpx2.SyncByteStream):
    def __init__(self, exchange: Exchange, loop: LoopThread) -> None:
        self.exchange = exchange
        self.loop = loop

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := self.loop.run(self.exchange.next_chunk())) is not None:
            yield chunk

    def close(self) -> None:
        self.loop.run(self.exchange.aclose())


class InProcessTransport(httpx2.BaseTransport):
    def __init__(self, app: Any) -> None:
        self.runner = AppRunner(app)
        self._loop: LoopThread | None = None
        self._loop_lock = threading.Lock()

    def _thread(self) -> LoopThread:
        with self._loop_lock:
            if self.runner.closed:
                raise RuntimeError("This Respond client is closed.")
            if self._loop is None:
                self._loop = LoopThread()
            return self._loop

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        loop = self._thread()
        body = request.read()
        exchange = loop.run(self.runner.open(request, body))
        return httpx2.Response(exchange.status, headers=exchange.headers, stream=_SyncBody(exchange, loop),
                               request=request)

    def close(self) -> None:
        with self._loop_lock:
            loop, self._loop = self._loop, None
            if loop is None:
                self.runner.closed = True
                return
        try:
            loop.run(self.runner.shutdown())
        finally:
            loop.stop()


# -- the clients ------------------------------------------------------------------------------------------

def make_client(config: Config | None = None, *, async_client: bool = False,
                **client_options: Any) -> openai.OpenAI | openai.AsyncOpenAI:
    """An openai client whose requests go straight into a new Respond app built from `config`.

    `config`: a `respond.config.Config`, or None for `load_config()` (config file / environment / defaults).
    `client_options` go to the openai client (e.g. `default_headers`, `max_retries`, `timeout`).
    Close the client (`client.close()`, `await client.close()`, or `with`) to stop the app's services.
    """
    from respond.app import create_app

    app = create_app(config or load_config(), trusted=True)  # the process itself: the implicit owner
    options: dict[str, Any] = {"base_url": BASE_URL, "api_key": "respond-library", "max_retries": 0}
    options.update(client_options)
    if async_client:
        return openai.AsyncOpenAI(http_client=httpx2.AsyncClient(transport=AsyncInProcessTransport(app)),
                                  **options)
    return openai.OpenAI(http_client=httpx2.Client(transport=InProcessTransport(app)), **options)
