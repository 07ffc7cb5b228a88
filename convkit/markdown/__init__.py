"""HTML → markdown for scraped chat messages (ShareGPT page HTML).

``html_to_markdown`` converts with one of :data:`ENGINES`, which give byte-identical output:
``"fast"`` (default), the compiled walk over lexbor's tree (:mod:`convkit.markdown.fast`), or
``"markdownify"``, the reference engine (:mod:`convkit.markdown.reference`, whose docstring is
the output specification, and the pure-Python fallback: ``"fast"`` runs it when the extension
is not built or does not pass its checks; ``fast.AVAILABLE`` and ``fast.UNAVAILABLE_REASON``
tell). With ``compat="fastchat"`` it reproduces FastChat's ``clean_sharegpt.html_to_markdown``
(:mod:`convkit.markdown.fastchat`). ``looks_like_html`` tells which turns need converting.
"""
from __future__ import annotations

from ..errors import ConfigError
from . import fast
from .detect import looks_like_html

__all__ = ["COMPAT_MODES", "DEFAULT_ENGINE", "ENGINES", "html_to_markdown", "looks_like_html"]

#: Conversion engines; every engine gives byte-identical output to the reference.
ENGINES = ("fast", "markdownify")
#: The engine used when none is named.
DEFAULT_ENGINE = "fast"
#: Values of ``compat`` other than None.
COMPAT_MODES = ("fastchat",)


def html_to_markdown(html: str, *, compat: str | None = None, engine: str = DEFAULT_ENGINE) -> str:
    """Convert one gpt message from scraped HTML to markdown.

    :param html: the message as scraped (``<div class="markdown prose …">…</div>``).
    :param compat: None for convkit's rules; ``"fastchat"`` for FastChat's output, bugs
        included (first code line taken as the language, math printed three times, ``\\_``).
    :param engine: ``"fast"`` or ``"markdownify"`` (same output; see :data:`ENGINES`). Not
        used with ``compat="fastchat"``, which is FastChat's own markdownify conversion.
    :raises ConfigError: for an unknown ``compat`` or ``engine`` value.
    :raises InputError: in ``"fastchat"`` mode, for input on which FastChat itself fails.
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown HTML engine {engine!r}; known: {', '.join(ENGINES)}")
    if compat is None:
        if engine == "fast":
            return fast.html_to_markdown(html)
        from . import reference  # markdownify and BeautifulSoup: imported when first used

        return reference.html_to_markdown(html)
    if compat == "fastchat":
        from . import fastchat

        return fastchat.html_to_markdown(html)
    raise ConfigError(f"unknown compat mode {compat!r}; known: {', '.join(COMPAT_MODES)}")
