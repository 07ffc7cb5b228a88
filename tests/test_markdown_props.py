"""Properties of the reference engine on generated markup: it never fails and its output is
always normalised, whatever the nesting, however broken the tags."""
from __future__ import annotations

from hypothesis import example, given, settings
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
@example("<a><pre>1</pre><span><a>1</br>")  # a <br> left on the closing fence's line
@example("<table><caption>1</br>1<pre>1")  # a caption's break marker was left in the text
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


def _soft_breaks_every_line(text: str) -> str:
    """``_layout.soft_breaks`` as written before its first-character pre-test: both patterns
    tried on every line."""
    from convkit.markdown._layout import _INTERRUPTS, _SOFT_BREAK, _WHOLE_LINE_BLOCK, BREAK, SOFT

    if SOFT not in text:
        return text
    pieces = text.split(_SOFT_BREAK)
    out = [pieces[0]]
    for piece in pieces[1:]:
        line = piece.partition("\n")[0].rstrip(BREAK + " ")
        interrupts = _INTERRUPTS.match(line) or _WHOLE_LINE_BLOCK.fullmatch(line)
        out.append(" " if interrupts or out[-1][-1:] == "\\" else "\n")
        out.append(piece)
    return "".join(out).replace(SOFT, "")


# Line starts of every kind the patterns know, and near misses: Unicode digits (\d), letters
# that case-fold onto tag names, markers and spaces before a block start.
SOFT_PIECES = [
    "\ufdd2\n", "\n", " ", "\t", "\\", "\ufdd1", "- ", "-", "+ ", "* ", "*", "_", "=", "1. ",
    "12) ", "\u0663. ", "\uff11. ", "\u00b2. ", "# ", "###### ", "####### ", "> ", "```", "~~~",
    "<pre>", "<SCRIPT ", "<!--", "<?", "<!D", "<![CDATA[", "</div>", "<TaBlE/>", "<p>", "<\u212a",
    "a", "é", "x y",
]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(SOFT_PIECES), max_size=12).map("".join))
def test_soft_breaks_pre_test_decides_as_the_patterns(text: str) -> None:
    from convkit.markdown._layout import soft_breaks

    assert soft_breaks(text) == _soft_breaks_every_line(text)
