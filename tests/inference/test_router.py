"""Router: `provider/model` ids, bare ids, unknown ids, discovery, Model objects, and the factory."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from respond.config import Config, ProviderConfig
from respond.errors import InvalidRequest, NotFound
from respond.inference.factory import build_providers
from respond.inference.local import LocalProvider
from respond.inference.openai_compat import OpenAICompatProvider
from respond.inference.router import Router


def compat(pid: str, base_url: str = "http://127.0.0.1:9/v1", **fields: Any) -> OpenAICompatProvider:
    return OpenAICompatProvider(ProviderConfig(id=pid, type="openai", base_url=base_url, **fields))


def local() -> LocalProvider:
    return LocalProvider(ProviderConfig(id="local", type="local", models=["smollm2-135m"],
                                        embedding_models=["all-minilm-l6-v2"]))


@pytest.fixture
async def router() -> Any:
    r = Router([compat("openai", models=["gpt-4o", "gpt-4o-mini"], embedding_models=["text-embedding-3-small"]),
                compat("vllm", models=["meta-llama/Llama-3.1-8B", "gpt-4o"]),
                local()], default_model="openai/gpt-4o-mini")
    await r.refresh()
    yield r
    await r.aclose()


async def test_prefixed_ids(router: Router) -> None:
    provider, name = router.resolve("openai/gpt-4o")
    assert (provider.id, name) == ("openai", "gpt-4o")
    provider, name = router.resolve("vllm/gpt-4o")
    assert (provider.id, name) == ("vllm", "gpt-4o")
    provider, name = router.resolve("local/smollm2-135m")
    assert (provider.id, name) == ("local", "smollm2-135m")


async def test_model_names_with_slashes(router: Router) -> None:
    provider, name = router.resolve("vllm/meta-llama/Llama-3.1-8B")
    assert (provider.id, name) == ("vllm", "meta-llama/Llama-3.1-8B")
    provider, name = router.resolve("meta-llama/Llama-3.1-8B")  # unique bare id, its own name has a slash
    assert (provider.id, name) == ("vllm", "meta-llama/Llama-3.1-8B")


async def test_unique_bare_id_resolves(router: Router) -> None:
    provider, name = router.resolve("gpt-4o-mini")
    assert (provider.id, name) == ("openai", "gpt-4o-mini")
    provider, name = router.resolve("smollm2-135m")
    assert (provider.id, name) == ("local", "smollm2-135m")


async def test_ambiguous_bare_id_is_rejected(router: Router) -> None:
    with pytest.raises(InvalidRequest) as info:
        router.resolve("gpt-4o")  # served by openai and vllm
    assert info.value.code == "model_not_found"


@pytest.mark.parametrize("model", ["nope", "openai/nope", "nope/gpt-4o"])
async def test_unknown_model(router: Router, model: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        await router.aresolve(model)
    exc = info.value
    assert exc.status_code == 400 and exc.param == "model" and exc.code == "model_not_found"
    assert exc.message.startswith(f"The model '{model}' does not exist or you do not have access to it.")
    assert "openai/gpt-4o-mini" in exc.message and "local/all-minilm-l6-v2" in exc.message


async def test_default_model(router: Router) -> None:
    provider, name = router.resolve(None)
    assert (provider.id, name) == ("openai", "gpt-4o-mini")


async def test_list_models(router: Router) -> None:
    models = await router.list_models()
    ids = [m["id"] for m in models]
    assert ids == ["openai/gpt-4o", "openai/gpt-4o-mini", "openai/text-embedding-3-small",
                   "vllm/meta-llama/Llama-3.1-8B", "vllm/gpt-4o", "local/smollm2-135m", "local/all-minilm-l6-v2"]
    first = models[0]
    assert first == {"id": "openai/gpt-4o", "object": "model", "created": 0, "owned_by": "openai", "kind": "llm"}
    assert {m["id"]: m["kind"] for m in models}["local/all-minilm-l6-v2"] == "embedding"


async def test_get_model(router: Router) -> None:
    model = await router.get_model("vllm/meta-llama/Llama-3.1-8B")
    assert model["id"] == "vllm/meta-llama/Llama-3.1-8B" and model["object"] == "model"
    with pytest.raises(NotFound) as info:
        await router.get_model("openai/nope")
    assert info.value.status_code == 404 and info.value.code == "model_not_found"


async def test_is_embedding_model(router: Router) -> None:
    assert router.is_embedding_model("openai/text-embedding-3-small")
    assert router.is_embedding_model("all-minilm-l6-v2")
    assert not router.is_embedding_model("openai/gpt-4o")
    assert not router.is_embedding_model("nope")


async def test_discovered_models(upstream: Any) -> None:
    upstream.models = ["served-a", "served-b"]
    r = Router([compat("up", base_url=upstream.base_url)], default_model=None)
    try:
        provider, name = await r.aresolve("up/served-b")  # takes the snapshot lazily
        assert (provider.id, name) == ("up", "served-b")
        assert [m["id"] for m in await r.list_models()] == ["up/served-a", "up/served-b"]
        with pytest.raises(InvalidRequest):
            await r.aresolve("up/not-served")
    finally:
        await r.aclose()


async def test_unreachable_provider_passes_ids_through() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = Router([compat("down", base_url=f"http://127.0.0.1:{port}/v1")], default_model=None)
    try:
        assert await r.list_models() == []
        provider, name = await r.aresolve("down/whatever")  # the upstream will decide
        assert (provider.id, name) == ("down", "whatever")
        with pytest.raises(InvalidRequest):
            await r.aresolve("whatever")  # a bare id needs a known model list
    finally:
        await r.aclose()


def test_duplicate_provider_ids() -> None:
    with pytest.raises(ValueError, match="duplicate provider ids"):
        Router([compat("a", models=["x"]), compat("a", models=["y"])])


async def test_factory_builds_configured_providers() -> None:
    config = Config(providers=[ProviderConfig(id="local", type="local"),
                               ProviderConfig(id="oa", type="openai", base_url="http://127.0.0.1:9/v1", models=["m"])])
    providers = build_providers(config)
    try:
        assert [type(p).__name__ for p in providers] == ["LocalProvider", "OpenAICompatProvider"]
        assert [p.id for p in providers] == ["local", "oa"]
        assert [(m.id, m.kind) for m in await providers[0].list_models()] == [
            ("smollm2-135m", "llm"), ("all-minilm-l6-v2", "embedding")]
    finally:
        for p in providers:
            await p.aclose()


async def test_openai_provider_defaults_to_openai() -> None:
    [provider] = build_providers(Config(providers=[ProviderConfig(id="oa", type="openai", api_key="k")]))
    try:
        assert provider.base_url == "https://api.openai.com/v1"
    finally:
        await provider.aclose()
