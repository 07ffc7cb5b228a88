"""Every reason a conversation or a part of one can be rejected for, with its meaning.

Filters declare their own reasons; the others come from reading, splitting and the pipeline.
``convkit reasons`` prints this table.
"""

from __future__ import annotations

from .filters import all_reasons
from .formats.base import format_reasons

READ_REASONS = {
    "malformed_json": "the record is not valid JSON (with --on-error skip)",
    "invalid_record": "the record does not have the format's shape (missing or mistyped field)",
    "unknown_role": "a turn's speaker or role is not one convkit knows",
    "unknown_format": "no reader recognises the record (with --from auto)",
    "no_conversation": "the record holds no conversation",
    "html_parse_error": "FastChat's converter cannot take this markup (--compat fastchat only)",
    "processing_error": "converting the record raised an unexpected error (a bug: please report it)",
    "untokenizable_text": "a text holds a lone surrogate (a JSON \\ud800 escape), which the "
    "tokenizer cannot encode (with --max-tokens)",
}

#: Parts the splitter drops (``convkit.split.DROP_REASONS``; a test keeps the two in step).
SPLIT_REASONS = {
    "leading_non_user": "turns between the system prompt and the first user turn",
    "no_assistant_reply": "a user turn (or a tool result) with no assistant turn after it",
    "no_context": "an exchange asking only to go on (\"continue\") that would open a segment "
    "without what it continues (--continuations drop)",
    "oversize_exchange": "one exchange is longer than --max-tokens on its own (--oversize drop)",
    "unused_system_prompt": "the system prompt of a conversation that yields no segment",
}

ALL_REASONS: dict[str, str] = dict(
    sorted({**READ_REASONS, **SPLIT_REASONS, **format_reasons(), **all_reasons()}.items())
)
