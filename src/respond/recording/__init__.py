"""Record/replay of every outbound call (chat, embeddings, models, tool calls): see docs/recording.md.

`Recorder` is the seam (`recorder.py`): it depends only on errors/config, so any outbound caller (providers,
tools) can use it. `RecordingProvider` (`provider.py`, imported from there) wraps an inference provider with
it, so that module sits above `inference/`.
"""

from respond.recording.codec import CHAT_COMPLETION, CHAT_COMPLETION_CHUNK, EMBEDDINGS, MODEL, MODEL_INFO
from respond.recording.context import HEADER, test_id, use_test_id
from respond.recording.errors import RecordingError, RecordingIncomplete, RecordingNotFound
from respond.recording.recorder import MODES, OutboundRequest, Recorder

__all__ = [
    "CHAT_COMPLETION", "CHAT_COMPLETION_CHUNK", "EMBEDDINGS", "HEADER", "MODEL", "MODEL_INFO", "MODES",
    "OutboundRequest", "Recorder", "RecordingError", "RecordingIncomplete", "RecordingNotFound", "test_id",
    "use_test_id",
]
