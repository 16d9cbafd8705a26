"""Keep configured credentials out of everything the server writes: client answers, the database, logs.

Upstreams sometimes echo the credential they were sent ("Incorrect API key provided: Bearer sk-..."). A
`Redactor` knows the secret values (provider API keys, and any other code's credentials: MCP authorization,
web-search keys — call `register`) and blanks them out of text or JSON-like values. The replacing itself is
the recorder's (`recording.scrub.redact_values`), so recordings and live answers redact the same way.

- `redactor` is the process-wide one: `register(value)` adds one credential, `register_config(config)`
  adds every credential of a `Config`.
- Outbound callers redact what they build from an upstream's answer (`openai_compat` does it where its
  `UpstreamError`s are made).
- `RedactingFilter` is the safety net on the log handlers (`logs.setup_logging` installs it): a log line or
  traceback that still carries a secret is redacted before it is written.
"""

from __future__ import annotations

import logging
from typing import Any

from respond.recording.scrub import REDACTED, redact_values

MIN_SECRET_LENGTH = 8  # shorter values ("none", "test") would blank out ordinary words


class Redactor:
    """A set of secret values and the means to blank them out of text or JSON-like values."""

    def __init__(self) -> None:
        self._secrets: frozenset[str] = frozenset()

    @property
    def secrets(self) -> frozenset[str]:
        return self._secrets

    def register(self, value: str | None) -> None:
        """Remember a credential; values shorter than MIN_SECRET_LENGTH are ignored."""
        if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH and value not in self._secrets:
            self._secrets = self._secrets | {value}

    def register_config(self, config: Any) -> None:
        """Every credential a `respond.config.Config` holds: the providers' API keys, the web search
        provider's key, and the header values of the operator's MCP servers (e.g. a bearer token)."""
        for provider in getattr(config, "providers", ()) or ():
            self.register(getattr(provider, "api_key", None))
        self.register(getattr(getattr(config, "web_search", None), "api_key", None))
        for server in getattr(getattr(config, "mcp", None), "servers", ()) or ():
            for value in (getattr(server, "headers", None) or {}).values():
                self.register(value)
                if isinstance(value, str) and value.lower().startswith("bearer "):
                    self.register(value[7:])

    def text(self, value: str) -> str:
        return redact_values(value, self._secrets) if self._secrets else value

    def value(self, value: Any) -> Any:
        """A copy of a str / dict / list with every secret replaced inside its strings."""
        return redact_values(value, self._secrets) if self._secrets else value

    def contains_secret(self, value: str) -> bool:
        return any(secret in value for secret in self._secrets)


redactor = Redactor()


class RedactingFilter(logging.Filter):
    """A handler filter that redacts secrets from the message and the traceback of every record."""

    def __init__(self, source: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = source if source is not None else redactor  # default: the process-wide one

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redactor.secrets:
            return True
        message = record.getMessage()
        if self.redactor.contains_secret(message):
            record.msg, record.args = self.redactor.text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.redactor.contains_secret(record.exc_text):
            record.exc_text = self.redactor.text(record.exc_text)
        return True


__all__ = ["REDACTED", "RedactingFilter", "Redactor", "redactor"]
