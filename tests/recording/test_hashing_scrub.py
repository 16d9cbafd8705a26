from __future__ import annotations

from respond.recording.hashing import canonical, request_hash
from respond.recording.scrub import is_secret_name, scrub_body, scrub_headers, scrub_url


def test_hash_ignores_key_order_and_float_noise():
    a = {"model": "m", "temperature": 0.7, "messages": [{"role": "user", "content": "hi"}]}
    b = {"messages": [{"content": "hi", "role": "user"}], "temperature": 0.70000000001, "model": "m"}
    assert request_hash("POST", "/v1/chat/completions", a, None) == request_hash("post", "/v1/chat/completions", b, None)


def test_hash_treats_integral_floats_as_ints_but_keeps_real_differences():
    base = request_hash("POST", "/e", {"temperature": 1}, None)
    assert request_hash("POST", "/e", {"temperature": 1.0}, None) == base
    assert request_hash("POST", "/e", {"temperature": 0.9}, None) != base
    assert request_hash("POST", "/e", {"temperature": 1.001}, None) != base
    assert request_hash("POST", "/e", {"temperature": True}, None) != base


def test_hash_depends_on_method_endpoint_body_and_test_id():
    body = {"input": "x"}
    h = request_hash("POST", "/v1/embeddings", body, None)
    assert len(h) == 64 and all(c in "0123456789abcdef" for c in h)
    assert request_hash("GET", "/v1/embeddings", body, None) != h
    assert request_hash("POST", "/v1/chat/completions", body, None) != h
    assert request_hash("POST", "/v1/embeddings", {"input": "y"}, None) != h
    assert request_hash("POST", "/v1/embeddings", body, "tests/a.py::t") != h
    assert request_hash("POST", "/v1/embeddings", body, "tests/a.py::t") != \
        request_hash("POST", "/v1/embeddings", body, "tests/a.py::u")


def test_hash_is_stable_across_runs():
    # A fixed value: changing the hashing scheme silently would orphan every recording on disk.
    assert canonical({"b": 1.234567, "a": [1.0, {"z": None, "y": "é"}]}) == '{"a":[1,{"y":"é","z":null}],"b":1.23457}'
    assert request_hash("POST", "/v1/chat/completions", {"model": "m"}, None) == \
        request_hash("POST", "/v1/chat/completions", {"model": "m"}, None)


def test_secret_names():
    for name in ["Authorization", "api-key", "X-Api-Key", "api_key", "apiKey", "access_token", "token",
                 "refreshToken", "client_secret", "password", "Cookie", "set-cookie", "private_key",
                 "x-goog-api-key", "proxy-authorization"]:
        assert is_secret_name(name), name
    for name in ["max_tokens", "max_completion_tokens", "max_output_tokens", "prompt_tokens", "token_count",
                 "total_tokens", "key", "keys", "model", "messages", "top_logprobs", "author", "monkey",
                 "tool_call_id", "content-type"]:
        assert not is_secret_name(name), name
    assert is_secret_name("key", bare_key=True)


def test_scrub_headers_body_and_url():
    headers = {"Authorization": "Bearer sk-1", "X-API-Key": "k", "Cookie": "a=b", "Content-Type": "json",
               "OpenAI-Organization": "org"}
    assert scrub_headers(headers) == {"Content-Type": "json", "OpenAI-Organization": "org"}
    body = {"model": "m", "max_tokens": 5, "api_key": "sk-2",
            "tools": [{"type": "mcp", "server_url": "http://x", "authorization": "tok", "headers": {"X-Token": "t"}}],
            "filters": {"type": "eq", "key": "region", "value": "eu"}}
    assert scrub_body(body) == {"model": "m", "max_tokens": 5,
                                "tools": [{"type": "mcp", "server_url": "http://x", "headers": {}}],
                                "filters": {"type": "eq", "key": "region", "value": "eu"}}
    assert body["api_key"] == "sk-2"  # the caller's body is not modified
    assert scrub_url("https://user:pw@search.test/q?key=abc&q=llama&api_key=x") == "https://search.test/q?q=llama"
    assert scrub_url("https://api.test/v1/chat/completions") == "https://api.test/v1/chat/completions"
    assert scrub_url("/search?q=a+b&access_token=t") == "/search?q=a+b"
