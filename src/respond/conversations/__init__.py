"""Conversations: durable lists of items that responses read as context and append their turns to."""

from respond.conversations.service import ConversationService

__all__ = ["ConversationService"]
