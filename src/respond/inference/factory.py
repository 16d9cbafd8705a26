"""Build the configured providers (`Config.providers`) as `base.Provider` instances."""

from __future__ import annotations

from respond.config import Config, ProviderConfig
from respond.inference.base import Provider


def build_provider(config: ProviderConfig) -> Provider:
    if config.type == "local":
        from respond.inference.local import LocalProvider

        return LocalProvider(config)
    if config.type == "openai":
        from respond.inference.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(config)
    raise ValueError(f"provider '{config.id}': unknown type {config.type!r}")


def build_providers(config: Config) -> list[Provider]:
    """One provider per `config.providers` entry, in order (nothing is loaded or contacted yet)."""
    return [build_provider(p) for p in config.providers]
