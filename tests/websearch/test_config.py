"""Zero-config web search: SEARXNG_URL / TAVILY_API_KEY / BRAVE_API_KEY, and the config file's section."""

from __future__ import annotations

from respond.config import load_config


def test_no_env_no_provider() -> None:
    assert load_config(env={}).web_search.provider is None


def test_env_enables_a_provider_searxng_first() -> None:
    ws = load_config(env={"SEARXNG_URL": "http://searx.local:8080", "BRAVE_API_KEY": "b-key"}).web_search
    assert (ws.provider, ws.base_url, ws.api_key) == ("searxng", "http://searx.local:8080", None)
    ws = load_config(env={"TAVILY_API_KEY": "tvly-abc", "BRAVE_API_KEY": "b-key"}).web_search
    assert (ws.provider, ws.api_key, ws.base_url) == ("tavily", "tvly-abc", None)
    ws = load_config(env={"BRAVE_API_KEY": "b-key"}).web_search
    assert (ws.provider, ws.api_key) == ("brave", "b-key")


def test_config_file_section_with_key_from_env(tmp_path) -> None:
    path = tmp_path / "respond.yaml"
    path.write_text("web_search:\n  provider: brave\n  base_url: http://127.0.0.1:9999/brave\n  timeout: 4\n"
                    "  max_results: 3\n")
    ws = load_config(path, env={"BRAVE_API_KEY": "b-key", "TAVILY_API_KEY": "tvly-abc"}).web_search
    assert (ws.provider, ws.api_key, ws.base_url, ws.timeout, ws.max_results) == \
        ("brave", "b-key", "http://127.0.0.1:9999/brave", 4, 3)
    path.write_text("web_search:\n  base_url: http://127.0.0.1:9999/tavily\n")
    ws = load_config(path, env={"TAVILY_API_KEY": "tvly-abc"}).web_search
    assert (ws.provider, ws.base_url) == ("tavily", "http://127.0.0.1:9999/tavily")  # file URL kept
