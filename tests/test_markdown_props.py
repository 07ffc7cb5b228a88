"""Properties of the reference engine on generated markup: it never fails and its output is
always normalised, whatever the nesting, however broken the tags."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import markup_gen

from convkit.markdown import html_to_markdown
from convkit.markdown._layout import MARKERS

TAGS = [
    "p", "div", "span", "b", "strong", "em", "i", "code", "pre", "ul", "ol", "li", "table",
    "thead", "tbody", "tr", "td", "th", "blockquote", "h1", "h3", "a", "img", "br", "hr",
    "del", "sup", "button", "svg", "script", "caption",
]
ATTRS = ['', ' class="language-py"', ' class="katex"', ' class="katex-display"', ' href="u v"',
         ' href="https://x.y"', ' src="i.png" alt="a_b"', ' start="3"', ' colspan="2"']
TEXT = st.text(alphabet=" \n\t*_`#>-|\\<&;1./abcé\u00a0\ufdd0", max_size=12)


def markup() -> st.SearchStrategy[str]:
    return markup_gen.markup(TAGS, ATTRS, TEXT)


@settings(max_examples=400, deadline=None)
@given(markup())
def test_output_is_normalised(html: str) -> None:
    out = html_to_markdown(html)
    assert out == out.strip(" \n")
    assert not any(m in out for m in MARKERS)
    assert "\n\n\n" not in out or "```" in out
    if "```" not in out:
        assert all(line == line.rstrip(" \t") for line in out.split("\n"))


@settings(max_examples=200, deadline=None)
@given(markup())
def test_fastchat_mode_never_fails_unexpectedly(html: str) -> None:
    from convkit.errors import InputError

    try:
        html_to_markdown(html, compat="fastchat")
    except InputError:
        pass  # inputs on which FastChat itself fails
