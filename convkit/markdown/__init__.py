"""HTML → markdown for scraped chat messages (ShareGPT page HTML).

``html_to_markdown`` runs the reference engine (:mod:`convkit.markdown.reference`, whose
docstring is the output specification), or with ``compat="fastchat"`` reproduces FastChat's
``clean_sharegpt.html_to_markdown`` (:mod:`convkit.markdown.fastchat`). ``looks_like_html``
tells which turns need converting.
"""
from __future__ import annotations

from ..errors import ConfigError
from . import fastchat, reference
from .detect import looks_like_html

__all__ = ["COMPAT_MODES", "ENGINES", "html_to_markdown", "looks_like_html"]

#: Conversion engines; every engine gives byte-identical output to the first.
ENGINES = ("markdownify",)
#: Values of ``compat`` other than None.
COMPAT_MODES = ("fastchat",)


def html_to_markdown(html: str, *, compat: str | None = None) -> str:
    """Convert one gpt message from scraped HTML to markdown.

    :param html: the message as scraped (``<div class="markdown prose …">…</div>``).
    :param compat: None for convkit's rules; ``"fastchat"`` for FastChat's output, bugs
        included (first code line taken as the language, math printed three times, ``\\_``).
    :raises ConfigError: for an unknown ``compat`` value.
    :raises InputError: in ``"fastchat"`` mode, for input on which FastChat itself fails.
    """
    if compat is None:
        return reference.html_to_markdown(html)
    if compat == "fastchat":
        return fastchat.html_to_markdown(html)
    raise ConfigError(f"unknown compat mode {compat!r}; known: {', '.join(COMPAT_MODES)}")
