"""Respond: an open, self-hostable server for the OpenAI Responses API in front of any model."""

__version__ = "0.1.0"


def client(config=None, *, async_client: bool = False):
    """Return an `openai.OpenAI` (or `AsyncOpenAI`) bound in-process to a Respond app.

    Library mode: no network hop, streaming included. See `respond.library`.
    """
    from respond.library import make_client

    return make_client(config, async_client=async_client)
