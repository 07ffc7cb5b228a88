"""Databricks Dolly 15k: ``{"instruction", "context", "response", "category"}``.

``context`` plays the role of Alpaca's ``input`` under the same ``prompt_template`` rules (see
:mod:`convkit.formats.alpaca`); ``category`` and any other field go to ``Conversation.meta``.
Dolly is read only: write ``alpaca`` for the single-exchange layout.
"""

from __future__ import annotations

from .alpaca import PROMPT_TEMPLATE_OPTION, Alpaca
from .base import Format, register


@register
class Dolly(Alpaca):
    name = "dolly"
    aliases = ("dolly-15k",)
    description = '{"instruction", "context", "response", "category"}'
    recognises = 'string "instruction" and "response"'
    detect_priority = 50
    claims = ("instruction", "response")
    options = (PROMPT_TEMPLATE_OPTION,)

    instruction_key = "instruction"
    input_key = "context"
    output_key = "response"

    # Reading only: the inherited Alpaca writer would misname the fields.
    write = Format.write  # type: ignore[assignment]
