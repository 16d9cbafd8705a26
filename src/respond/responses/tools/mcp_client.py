"""Talking to MCP servers: URL safety, transports, timeouts, and the Recorder.

Each operation (list the tools, call one tool) opens its own session with the official `mcp` SDK, inside one
task, and closes it: streamable HTTP first, SSE when the URL's path ends in `/sse` or when the server
refuses streamable HTTP (the transport that worked is remembered per URL). Every operation is one
`Recorder.call` (`endpoint` `mcp://<server_label>/tools/list` or `/tools/call`, body without secrets or the
URL, so recordings replay against a server on any port). Secrets (`authorization`, `headers`) only ever go
to the server: never into the recording, the logs, or an error message.

Failures become `MCPFailure` with a message safe to show to the client and to the model.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from respond.config import MCPConfig
from respond.errors import UpstreamError
from respond.recording.recorder import OutboundRequest
from respond.responses.tools.base import ToolEnv

log = logging.getLogger("respond.mcp")

MAX_LIST_PAGES = 20


class MCPFailure(Exception):
    """An MCP operation failed; `str(exc)` is safe to show (no secrets). `error` is the `mcp_call.error`
    object: `{"type": "http_error", "code", "message"}` or `{"type": "mcp_protocol_error", "code", "message"}`."""

    def __init__(self, message: str, error: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error = error or {"type": "http_error", "code": 502, "message": message}


@dataclass(frozen=True)
class MCPServer:
    """Where and how to reach one server. `headers` hold the secrets; never log or store them."""

    label: str
    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    trusted: bool = False  # declared by the operator: the URL checks don't apply


# -- URL safety ---------------------------------------------------------------------------------------


def url_problem(url: str, config: MCPConfig) -> str | None:
    """Why a request may not use this server URL (None: it may). Literal addresses and `localhost` are
    checked here; host names are resolved and checked again when connecting (`resolved_problem`)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "it is not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return "it must be an http(s) URL"
    if not config.allow_request_urls:
        return "this server only allows the MCP servers it declares (use server_label or connector_id)"
    if any(url.startswith(prefix) for prefix in config.denied_urls):
        return "the server's operator denies it"
    if config.allowed_urls:
        if any(url.startswith(prefix) for prefix in config.allowed_urls):
            return None
        return "it is not among the URLs the server's operator allows"
    if config.allow_private_networks:
        return None
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return "it points to a private or loopback address"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a host name: checked once resolved
    return "it points to a private or loopback address" if _private(address) else None


def _private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


async def resolved_problem(server: MCPServer, config: MCPConfig) -> str | None:
    """A request URL whose host name resolves to a private address is refused (unless allowed)."""
    if server.trusted or config.allow_private_networks or any(server.url.startswith(p) for p in config.allowed_urls):
        return None
    parts = urlsplit(server.url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return None  # literal: checked by url_problem
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError:
        return None  # unresolvable: connecting fails with a clear error
    for info in infos:
        if _private(ipaddress.ip_address(info[4][0])):
            return "it resolves to a private or loopback address"
    return None


# -- operations ---------------------------------------------------------------------------------------


async def list_tools(env: ToolEnv, server: MCPServer) -> list[dict[str, Any]]:
    """The server's tools as MCP describes them (`name`, `description`, `inputSchema`, `annotations`)."""
    config = env.config.mcp

    async def live() -> dict[str, Any]:
        async def op(client: Any) -> dict[str, Any]:
            tools: list[dict[str, Any]] = []
            cursor = None
            for _ in range(MAX_LIST_PAGES):
                page = await client.list_tools(cursor=cursor)
                tools.extend(t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
            return {"tools": tools}
        return await _run(env, server, op, config.list_timeout, "list its tools")

    result = await _recorded(env, server, "tools/list", {}, live, "mcp.types.ListToolsResult")
    tools = result.get("tools") if isinstance(result, dict) else None
    if not isinstance(tools, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str)
                                             for t in tools):
        raise MCPFailure(f"MCP server '{server.label}' returned an invalid tool list.")
    return tools


async def call_tool(env: ToolEnv, server: MCPServer, name: str, arguments: dict[str, Any],
                    known_tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A `tools/call` result as MCP describes it (`content`, `structuredContent`, `isError`).

    `known_tools` (the listing this chain already has) is handed to the SDK's fresh session, so it does not
    list the tools again before calling (it would, to validate the result against an output schema)."""
    config = env.config.mcp

    async def live() -> dict[str, Any]:
        async def op(client: Any) -> dict[str, Any]:
            if known_tools:
                _prime(client, known_tools)
            result = await client.call_tool(name, arguments)
            return result.model_dump(mode="json", by_alias=True, exclude_none=True)
        return await _run(env, server, op, config.call_timeout, f"run '{name}'")

    result = await _recorded(env, server, "tools/call", {"name": name, "arguments": arguments}, live,
                             "mcp.types.CallToolResult")
    if not isinstance(result, dict) or not isinstance(result.get("content", []), list):
        raise MCPFailure(f"MCP server '{server.label}' returned an invalid result for '{name}'.")
    return result


def _prime(client: Any, tools: list[dict[str, Any]]) -> None:
    """Give the session the listing we already have (input schemas; no output schemas: Respond passes tool
    output to the model as it is, like the Responses API). If this SDK version cannot take it, the SDK lists
    the tools itself."""
    try:
        from mcp_types import ListToolsResult

        listing = ListToolsResult.model_validate({"tools": [{k: v for k, v in t.items() if k != "outputSchema"}
                                                            for t in tools]})
        client.session._absorb_tool_listing(listing, complete=True)
    except Exception:  # noqa: BLE001 -- an optimisation only
        log.debug("could not hand the known tool listing to the MCP session", exc_info=True)


async def _recorded(env: ToolEnv, server: MCPServer, method: str, body: dict[str, Any], live: Any,
                    response_type: str) -> Any:
    req = OutboundRequest(method="POST", url=server.url, endpoint=f"mcp://{server.label}/{method}", body=body)
    try:
        return await env.recorder.call(req, live, response_type=response_type)
    except UpstreamError as exc:
        error = exc.body.get("error") if isinstance(exc.body, dict) else None
        if not isinstance(error, dict):
            error = {"type": "http_error", "code": exc.upstream_status or 502, "message": exc.message}
        raise MCPFailure(exc.message, error) from None


# -- sessions -------------------------------------------------------------------------------------------


async def _run(env: ToolEnv, server: MCPServer, op: Any, timeout: float, what: str) -> Any:
    """Open a session (streamable HTTP, else SSE), run `op(client)`, close it; all within `timeout`.
    Raises UpstreamError (with the server's HTTP status when it answered one, so it is recorded)."""
    config = env.config.mcp
    problem = await resolved_problem(server, config)
    if problem is not None:
        message = f"MCP server '{server.label}' may not be used: {problem}."
        raise UpstreamError(message, body={"error": {"type": "http_error", "code": 403, "message": message}})
    transports: dict[str, str] = env.state.setdefault("mcp_transport", {})
    known = transports.get(server.url)
    order = [known] if known else (["sse", "streamable_http"] if urlsplit(server.url).path.rstrip("/").endswith("/sse")
                                   else ["streamable_http", "sse"])
    try:
        async with asyncio.timeout(timeout):
            last: BaseException | None = None
            for transport in order:
                try:
                    result = await _session(env, server, transport, op, config.connect_timeout)
                except Exception as exc:  # noqa: BLE001 -- the SDK raises exception groups of anything
                    last = exc
                    if not _worth_another_transport(exc):
                        break
                    continue
                transports[server.url] = transport
                return result
            assert last is not None
            raise _failure(server, what, last)
    except TimeoutError:
        message = f"MCP server '{server.label}' did not {what} within {timeout:g} seconds."
        raise UpstreamError(message, body={"error": {"type": "http_error", "code": 504, "message": message}}) from None


async def _session(env: ToolEnv, server: MCPServer, transport: str, op: Any, connect_timeout: float) -> Any:
    import httpx2
    from mcp import Client
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    verify = _tls_context(env)

    def http_client(headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None) -> Any:
        return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, verify=verify)

    if transport == "sse":
        stream = sse_client(server.url, headers=dict(server.headers), timeout=connect_timeout,
                            sse_read_timeout=3600, httpx_client_factory=http_client)
        async with Client(stream, cache=None) as client:
            return await op(client)
    async with http_client(dict(server.headers), httpx2.Timeout(connect_timeout, read=None)) as http, \
            Client(streamable_http_client(server.url, http_client=http), cache=None) as client:
        return await op(client)


def _tls_context(env: ToolEnv) -> ssl.SSLContext:
    """One TLS context per app: building one per HTTP client costs tens of milliseconds."""
    context = env.state.get("mcp_tls")
    if context is None:
        context = env.state["mcp_tls"] = ssl.create_default_context()
    return context


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    out = [exc]
    cause = exc.__cause__
    if cause is not None and cause is not exc:
        out.extend(_leaves(cause))
    return out


def _http_status(exc: BaseException) -> int | None:
    for leaf in _leaves(exc):
        response = getattr(leaf, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
    return None


def _redact(text: str, server: MCPServer) -> str:
    """Error text without the server's URL (an operator's server URL is not the client's to see)."""
    host = urlsplit(server.url).hostname or ""
    for secret in (server.url, host, *server.headers.values()):
        if secret:
            text = text.replace(secret, "<server>")
    return text


def _worth_another_transport(exc: BaseException) -> bool:
    """A server that answered but refused streamable HTTP may speak SSE; an unreachable one won't."""
    import httpx2

    leaves = _leaves(exc)
    if any(isinstance(leaf, (httpx2.ConnectError, httpx2.ConnectTimeout)) for leaf in leaves):
        return False
    status = _http_status(exc)
    return status is None or status in (400, 404, 405, 406, 415)


def _failure(server: MCPServer, what: str, exc: BaseException) -> UpstreamError:
    import httpx2

    leaves = _leaves(exc)
    status = _http_status(exc)
    protocol = next((leaf for leaf in leaves if type(leaf).__name__ == "MCPError"), None)
    if protocol is not None and status is None:
        code = getattr(protocol, "code", None)
        text = _redact(str(getattr(protocol, "message", None) or protocol), server)[:300]
        message = f"MCP server '{server.label}' failed to {what}: {text}."
        log.warning("%s", message)
        return UpstreamError(message, upstream_status=400, body={"error": {
            "type": "mcp_protocol_error", "code": code if isinstance(code, int) else -32603, "message": text}})
    if status is not None:
        detail = f"it answered HTTP {status}"
        if status in (401, 403):
            detail += " (check the authorization / headers given for it)"
    elif any(isinstance(leaf, (httpx2.ConnectError, httpx2.ConnectTimeout, OSError)) for leaf in leaves):
        detail = "it could not be reached"
    elif any(isinstance(leaf, (httpx2.TimeoutException, TimeoutError)) for leaf in leaves):
        detail = "it timed out"
    else:
        leaf = leaves[-1]
        text = _redact(str(leaf), server)[:200]
        detail = f"{type(leaf).__name__}: {text}" if text else type(leaf).__name__
    message = f"MCP server '{server.label}' failed to {what}: {detail}."
    log.warning("%s", message)
    return UpstreamError(message, upstream_status=status, body={"error": {
        "type": "http_error", "code": status or 502, "message": message}})
