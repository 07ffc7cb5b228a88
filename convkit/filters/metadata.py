"""Record-level fields: FastChat drops conversations that used ChatGPT plugins.

FastChat runs this check in its final, stateful pass; it needs no state, so here it runs first in
the chain (in the workers). A conversation with plugins never reaches dedup in either tool, so
its id and content do not shadow later conversations.
"""
from __future__ import annotations

from typing import ClassVar

from ..model import Conversation
from .base import DropFilter, register


@register
class Plugins(DropFilter):
    """Drops a conversation whose ``plugins`` field is set. FastChat tests ``is not None``; an
    empty list, object or string says no plugin was used, so those are kept here."""

    name = "plugins"
    order = 10
    description = "drop conversations that used plugins (a non-empty \"plugins\" field)"
    reasons: ClassVar[dict[str, str]] = {
        "uses_plugins": "the record's \"plugins\" field is set (ChatGPT plugins were used)",
    }

    def check(self, conv: Conversation) -> str | None:
        value = conv.meta.get("plugins")
        if value is None or (isinstance(value, (str, list, dict)) and not value):
            return None
        return "uses_plugins"
