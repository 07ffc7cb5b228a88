"""The fast HTML → markdown engine: the compiled walk of :mod:`convkit.markdown._fast`.

Its output is byte-identical to the reference engine (:mod:`convkit.markdown.reference`, the
spec and the pure-Python twin). ``AVAILABLE`` says whether it can run here; when it cannot,
``UNAVAILABLE_REASON`` says why and :func:`html_to_markdown` runs the reference engine.

The extension reads lexbor's tree through the node layout that selectolax's ``lexbor.pxd``
declares and through lexbor functions exported by selectolax's own extension module. That ties
a build to the selectolax whose declarations it copies (``_fast.LAYOUT_FROM``), not to the one
installed (``SELECTOLAX_VERSION``), so nothing is trusted on faith at import: ``_fast.bind``
checks every node field the walk reads against selectolax's Python API and learns the tag ids
from selectolax itself, and :data:`CANARIES` are converted and compared with
:data:`CANARY_OUTPUTS`, the reference engine's output for them (a test keeps the two in step).
Any mismatch disables the fast engine (with the reason) instead of producing different output.
``CONVKIT_PUREPYTHON=1`` disables it too.
"""
from __future__ import annotations

import selectolax
import selectolax.lexbor as _selectolax_lexbor

from .._backend import pure_python
from ._lexbor import parse

__all__ = [
    "AVAILABLE", "CANARIES", "CANARY_OUTPUTS", "SELECTOLAX_VERSION", "UNAVAILABLE_REASON",
    "html_to_markdown",
]

#: The selectolax version installed now.
SELECTOLAX_VERSION: str = getattr(selectolax, "__version__", "unknown")

#: Documents converted at import; one difference from CANARY_OUTPUTS and the fast engine is off.
#: Together they reach every converter, the white-space rules, code blocks and math.
CANARIES = (
    (
        '<div class="markdown prose"><p>1 / 2</p><h2>T <em>x</em></h2><p>a <b> b </b>'
        "<code>c`d</code>\n<a href=\"https://e.f\" title=\"t\">l</a> <img src=\"i.png\" alt=\"a_b\">"
        "<br>y<q>q</q><del>d</del><i>i</i><sub>2</sub></p><ol start=\"3\"><li>one<ul><li>n</li>"
        '</ul></li><li><p>two</p></li></ol><pre><div>python<button>Copy</button></div><code class="'
        'language-py">def f():\n    return 1\n</code></pre><ol><li>on</li></ol><blockquote>q<br>r'
        "</blockquote><table><caption>c</caption><thead><tr><th colspan=\"2\">h|</th></tr></thead>"
        "<tbody><tr><td>1</td><td>2</td></tr></tbody></table><hr><span class=\"katex\"><math>"
        '<semantics><annotation encoding="application/x-tex">x^2</annotation></semantics></math>'
        '</span><div class="katex-display"><math><annotation encoding="application/x-tex">\\int'
        "</annotation></math></div><math display=\"block\"><annotation encoding=\"application/x-tex"
        '">y</annotation></math><p>soft\nbreak\n- not a list</p><div>Copy12 chars / 3 words</div>'
        "<kbd>k</kbd><samp>s</samp><s>s</s><strike>s</strike><strong>s</strong></div>"
    ),
    "  plain <i>&#xfdd0;text</i>&amp;<p>x<td>cell</td><caption>c</caption></p>",
    "<table><tr><td><pre><code>a\nb</code></pre><h1>h</h1><ul><li>i</li></ul></td></tr></table>",
)

#: The reference engine's output for each canary (``tests/test_markdown_fast.py`` checks them
#: against the reference engine, so that importing the fast engine never imports markdownify).
CANARY_OUTPUTS = (
    '1 / 2\n\n## T *x*\n\na **b** `` c`d ``\n[l](https://e.f "t") ![a_b](i.png)\\\ny"q"~~d~~*i*2\n\n3. one\n   - n\n4. two\n\n```py\ndef f():\n    return 1\n```\n\n5. on\n\n> q\\\n> r\n\nc\n\n| h\\| | |\n| --- | --- |\n| 1 | 2 |\n\n---\n\n$x^2$\n\n$$\\int$$\n\n$$y$$\n\nsoft\nbreak - not a list\n\n`k` `s`~~s~~~~s~~**s**',
    'plain *text*&\n\nxcellc',
    '| `a b` h i |\n| --- |',
)

AVAILABLE = False
UNAVAILABLE_REASON: str | None = None


def _enable() -> None:
    global AVAILABLE, UNAVAILABLE_REASON, _convert
    if pure_python():
        UNAVAILABLE_REASON = "CONVKIT_PUREPYTHON is set"
        return
    try:
        from . import _fast
    except ImportError as err:
        UNAVAILABLE_REASON = f"the extension is not built ({err})"
        return
    try:
        _fast.bind(_selectolax_lexbor.__file__, _selectolax_lexbor.create_tag, parse)
        for html, expected in zip(CANARIES, CANARY_OUTPUTS, strict=True):
            if _fast.convert(html) != expected:
                raise RuntimeError(f"the engines differ on a canary: {html[:60]!r}…")
    except Exception as err:  # noqa: BLE001 - any failure of the checks means: do not use this build
        UNAVAILABLE_REASON = f"selectolax {SELECTOLAX_VERSION}: {err}"
        return
    _convert = _fast.convert
    AVAILABLE = True


def _reference(html: str) -> str:
    # Imported on first use: markdownify and BeautifulSoup cost a process a fifth of a second.
    from . import reference

    return reference.html_to_markdown(html)


_convert = _reference
_enable()


def html_to_markdown(html: str) -> str:
    """Convert one scraped HTML message to markdown (the reference engine's output, faster)."""
    return _convert(html)
