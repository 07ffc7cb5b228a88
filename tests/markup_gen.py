"""Hypothesis strategy for broken, nested markup, shared by the markdown property tests."""
from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st


def markup(
    tags: Sequence[str], attrs: Sequence[str], text: st.SearchStrategy[str], max_depth: int = 6
) -> st.SearchStrategy[str]:
    """Fragments of ``tags`` with ``attrs`` around ``text``: nested, sometimes left open, with
    stray end tags, as scraped HTML is."""

    @st.composite
    def fragment(draw: st.DrawFn, depth: int = 0) -> str:
        parts = []
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.integers(0, 3))
            if kind == 0 or depth > max_depth:
                parts.append(draw(text))
            elif kind == 1:
                parts.append(f"</{draw(st.sampled_from(tags))}>")  # stray or early end tag
            else:
                tag = draw(st.sampled_from(tags))
                attr = draw(st.sampled_from(attrs))
                inner = draw(fragment(depth + 1))
                close = draw(st.booleans())
                parts.append(f"<{tag}{attr}>{inner}" + (f"</{tag}>" if close else ""))
        return "".join(parts)

    return fragment()
