"""Duplicates: a repeated id, or repeated content, after every other filter; the first one wins.

FastChat keys content on the first two messages only, and other tools use Python's ``hash()``,
which is salted per process. Here the key is a SHA-256 digest, cut to 16 bytes, of every turn
(role, the SHA-256 digest of its normalised content, and the images, audio, files and tool
calls a turn carries beside its text, length-prefixed so no two different conversations share
an encoding), the same in every process and every run. Two questions about two different
images are not duplicates. A digest of each turn's text rather than the text: the HTML
converter thread hashes the turns it converts while they are still its bytes, beside the
thread that filters them (see :func:`convkit.process.prepared_aside`). SHA-256 rather than
BLAKE2b: the processors of the last years compute it in hardware (x86 SHA extensions, ARMv8),
about twice as fast as Python's BLAKE2b here, and 16 bytes keep collisions out of reach for any
dataset. These filters keep state: the pipeline runs them through
:class:`~convkit.filters.base.Dedup` in the main process, in input order.
"""
from __future__ import annotations

import hashlib
from typing import ClassVar

from ..io import json_text
from ..model import Conversation, Turn, media_parts, tool_calls
from ..scan import content_frames
from .base import KeyFilter, register


def normalise_text(text: str) -> str:
    """The text as dedup compares it: white space stripped at both ends and every inner run of
    white space (spaces, tabs, new lines, Unicode spaces) made one space. Case is kept."""
    return " ".join(text.split())


def content_digest(conv: Conversation, known: dict[int, tuple[str, bytes]] | None = None) -> bytes:
    """The first 16 bytes of the SHA-256 digest of ``conv``'s turns: for each, its role, UTF-8
    encoded and prefixed with its length as 8 big-endian bytes, then 32 as 8 such bytes and the
    SHA-256 digest of its normalised content (UTF-8); for a turn with media parts or tool
    calls, that 32's top bit set and those as canonical JSON (:func:`_extras`), prefixed with
    their length. ``known``: content digests already computed, ``{id(content): (content,
    digest)}`` (a turn whose content is not that very object is hashed here)."""
    # Framed in one compiled pass (white space collapsed, encoded and hashed on the way; lone
    # surrogates survive JSON, and hash too), then hashed in one call.
    return hashlib.sha256(content_frames(conv.turns, _extras, known)).digest()[:16]


def _extras(t: Turn) -> bytes | None:
    """The turn's media parts and tool calls (their ids left out: they name a call, they are
    not its content), as canonical JSON; None when it has neither."""
    media = media_parts(t)
    calls = tool_calls(t)
    if not media and calls is None:
        return None
    if isinstance(calls, list):
        calls = [
            {k: v for k, v in c.items() if k != "id"} if isinstance(c, dict) else c for c in calls
        ]
    # json_text: tool-call arguments may nest as deep as the reader takes.
    return json_text({"calls": calls, "media": media}, ensure_ascii=True, sort_keys=True).encode()


@register
class DuplicateId(KeyFilter):
    name = "duplicate_id"
    order = 10
    description = "drop a conversation whose id was already kept"
    reasons: ClassVar[dict[str, str]] = {
        "duplicate_id": "an earlier kept conversation has the same id",
    }

    def key(self, conv: Conversation) -> str:
        # 1 and "1" are one id here (FastChat would keep both): segment ids ("1_0") and
        # parquet's id column are strings, and they must stay unique.
        return conv.id


@register
class DuplicateContent(KeyFilter):
    name = "duplicate_content"
    order = 20
    description = "drop a conversation whose turns (normalised) were already kept"
    reasons: ClassVar[dict[str, str]] = {
        "duplicate_content": "an earlier kept conversation has the same roles and contents "
        "(with the same images and tool calls), white space aside",
    }

    def key(self, conv: Conversation) -> bytes:
        return content_digest(conv)

    def key_known(self, conv: Conversation, known: dict[int, tuple[str, bytes]]) -> bytes:
        return content_digest(conv, known)
