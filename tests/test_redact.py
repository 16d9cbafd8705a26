"""The Redactor and the log filter that keeps configured credentials out of log lines."""

from __future__ import annotations

import io
import logging

from respond.config import Config, ProviderConfig
from respond.logs import JSONFormatter
from respond.redact import RedactingFilter, Redactor

KEY = "sk-live-0123456789abcdef"


def test_redactor_replaces_registered_secrets_in_text_and_values() -> None:
    redactor = Redactor()
    assert redactor.text(f"Bearer {KEY}") == f"Bearer {KEY}"  # nothing registered: unchanged
    redactor.register(KEY)
    redactor.register("short")  # too short to be told apart from ordinary words: ignored
    redactor.register(None)
    assert redactor.secrets == {KEY}
    assert redactor.text(f"Incorrect API key provided: Bearer {KEY}.") == \
        "Incorrect API key provided: Bearer <redacted>."
    assert redactor.value({"error": {"message": [f"x{KEY}x"], "code": 401}}) == \
        {"error": {"message": ["x<redacted>x"], "code": 401}}
    redactor.register(KEY + "-longer")  # a secret containing another is replaced whole
    assert redactor.text(f"{KEY}-longer") == "<redacted>"


def test_redactor_from_config() -> None:
    redactor = Redactor()
    redactor.register_config(Config(providers=[
        ProviderConfig(id="a", type="openai", api_key=KEY), ProviderConfig(id="b", type="local")]))
    assert redactor.secrets == {KEY}


def test_redactor_from_config_knows_web_search_and_mcp_credentials() -> None:
    from respond.config import MCPConfig, MCPServerConfig, WebSearchConfig

    redactor = Redactor()
    redactor.register_config(Config(
        web_search=WebSearchConfig(provider="tavily", api_key="tvly-secret-123"),
        mcp=MCPConfig(servers=[MCPServerConfig(label="gh", url="https://mcp.example/mcp",
                                               headers={"Authorization": "Bearer ghp-token-456"})])))
    assert redactor.secrets == {"tvly-secret-123", "Bearer ghp-token-456", "ghp-token-456"}
    assert redactor.text("bad token ghp-token-456 / tvly-secret-123") == "bad token <redacted> / <redacted>"


def test_the_log_filter_redacts_messages_arguments_and_tracebacks() -> None:
    redactor = Redactor()
    redactor.register(KEY)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(RedactingFilter(redactor))
    logger = logging.getLogger("tests.redact")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        logger.warning("upstream said: %s", f"bad key {KEY}")
        logger.warning(f"inline {KEY}")
        try:
            raise RuntimeError(f"Authorization: Bearer {KEY}")
        except RuntimeError:
            logger.exception("call failed")
        logger.info("nothing secret here %d", 42)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    text = out.getvalue()
    assert KEY not in text
    assert text.count("<redacted>") == 3 and "nothing secret here 42" in text


def test_setup_logging_installs_the_filter() -> None:
    from respond.logs import setup_logging

    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    try:
        setup_logging("info", "json")
        assert any(isinstance(f, RedactingFilter) for f in root.handlers[0].filters)
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
