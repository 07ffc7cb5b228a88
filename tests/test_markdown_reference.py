"""The reference engine, one rule per case (the rules are in convkit.markdown.reference).

``CASES`` is shared with every other engine: each must give exactly these outputs.
"""
from __future__ import annotations

import pytest

from convkit.errors import ConfigError
from convkit.markdown import ENGINES, html_to_markdown, looks_like_html
from convkit.markdown.noise import strip_regeneration_counter


def md(html: str) -> str:
    return html_to_markdown(html)


# ShareGPT code blocks as the pages have them: newer form (button) and older form (no button).
HEADER_NEW = (
    '<div class="flex items-center relative text-gray-200 bg-gray-800 px-4 py-2 text-xs '
    'font-sans"><span class="">{lang}</span><button class="flex ml-auto gap-2"><svg '
    'stroke="currentColor" fill="none" viewBox="0 0 24 24" class="h-4 w-4"><path d="M16 4h2">'
    '</path><rect x="8" y="2" width="8" height="4" rx="1" ry="1"></rect></svg>Copy code</button>'
    "</div>"
)
HEADER_OLD = (
    '<div class="flex items-center relative text-gray-200 bg-gray-800 px-4 py-2 text-xs '
    'font-sans"><span>{lang}</span><svg stroke="currentColor" fill="none" class="h-4 w-4" '
    'height="1em" width="1em" xmlns="http://www.w3.org/2000/svg"></svg>Copy code</div>'
)


def sharegpt_pre(code: str, lang: str = "python", header: str = HEADER_NEW) -> str:
    cls = f"!whitespace-pre hljs language-{lang}" if lang else "!whitespace-pre hljs"
    return (
        f'<pre><div class="bg-black mb-4 rounded-md">{header.format(lang=lang)}'
        f'<div class="p-4 overflow-y-auto"><code class="{cls}">{code}</code></div></div></pre>'
    )


PY_CODE = (
    '<span class="hljs-keyword">def</span> <span class="hljs-title function_">f</span>'
    '(<span class="hljs-params">a_b</span>):\n    <span class="hljs-keyword">return</span> '
    'a_b * <span class="hljs-number">2</span>\n'
)

KATEX_INLINE = (
    '<span class="katex"><span class="katex-mathml"><math xmlns="http://www.w3.org/1998/Math/'
    'MathML"><semantics><mrow><mi>π</mi><msup><mi>r</mi><mn>2</mn></msup></mrow><annotation '
    'encoding="application/x-tex">\\pi r^2</annotation></semantics></math></span><span '
    'class="katex-html" aria-hidden="true"><span class="base"><span class="mord mathnormal">π'
    '</span><span class="mord"><span class="mord mathnormal">r</span><span class="msupsub">2'
    "</span></span></span></span></span>"
)
KATEX_DISPLAY = (
    '<span class="katex-display"><span class="katex"><span class="katex-mathml"><math '
    'xmlns="http://www.w3.org/1998/Math/MathML" display="block"><semantics><mrow><mi>E</mi>'
    '<mo>=</mo><mi>m</mi><msup><mi>c</mi><mn>2</mn></msup></mrow><annotation '
    'encoding="application/x-tex">E = mc^2\n</annotation></semantics></math></span><span '
    'class="katex-html" aria-hidden="true"><span class="base"><span class="mord mathnormal">E'
    '</span><span class="mrel">=</span><span class="mord mathnormal">mc</span><span '
    'class="msupsub">2</span></span></span></span></span>'
)

CASES: list[tuple[str, str]] = [
    # -- inline markup (19) ----------------------------------------------------------------
    ("<b>x</b>", "**x**"),
    ("<strong>x</strong> and <em>y</em> and <i>z</i>", "**x** and *y* and *z*"),
    ("<del>gone</del> <s>old</s> <strike>older</strike>", "~~gone~~ ~~old~~ ~~older~~"),
    ("<p>a <b> b </b> c</p>", "a **b** c"),
    ("<p>a<b> b</b>c</p>", "a **b**c"),
    ("<b>bold <strong>twice</strong></b>", "**bold twice**"),
    ("<p>a<b></b><em> </em>b</p>", "a b"),
    ("<p><u>under</u> <mark>mark</mark> x<sup>2</sup> H<sub>2</sub>O <q>quote</q></p>",
     'under mark x2 H2O "quote"'),
    # -- no escaping (10) ------------------------------------------------------------------
    ("<p>snake_case, 2 * 3 * 4, __init__, a_b_c</p>", "snake_case, 2 * 3 * 4, __init__, a_b_c"),
    ("<p>use &lt;div&gt; &amp; [brackets] # hash</p>", "use <div> & [brackets] # hash"),
    # -- white space and soft breaks (8, 25) -----------------------------------------------
    ("<p>one</p><p>two</p>", "one\n\ntwo"),
    ("<p>  lots   of \t space  </p>", "lots of space"),
    ("<p>line one\nline two  \n  line three</p>", "line one\nline two\nline three"),
    ("<p>Human: hi\nDragon: hello</p>", "Human: hi\nDragon: hello"),
    ("<p>text\n- not a list\n# not a heading\n&gt; not a quote\n---</p>",
     "text - not a list # not a heading > not a quote ---"),
    ("<p>say\n1. not a list\n&lt;div&gt; is text\n&lt;span&gt; stays</p>",
     "say 1. not a list <div> is text\n<span> stays"),
    ("<p>C:\\\nnext</p>", "C:\\ next"),
    ("<div>a<div>b</div>c</div>", "a\n\nb\n\nc"),
    ("<div>a <p>b</p> c</div>", "a\n\nb\n\nc"),
    ("<p>x\u00a0 y</p>", "x\u00a0 y"),
    # -- headings (12) ---------------------------------------------------------------------
    ("<h1>Title</h1><h3>Sub <em>x</em></h3>", "# Title\n\n### Sub *x*"),
    ("<h2>multi\nline<br>head</h2><h4> </h4><h6>six</h6>", "## multi line head\n\n###### six"),
    ("<h7>not a heading</h7>", "not a heading"),
    # -- blockquote (13) -------------------------------------------------------------------
    ("<blockquote><p>q1</p><p>q2</p></blockquote>", "> q1\n>\n> q2"),
    ("<blockquote>a<blockquote>b</blockquote></blockquote>", "> a\n>\n> > b"),
    ("<blockquote><ul><li>x\ny</li></ul></blockquote>", "> - x\n>   y"),
    # -- hr and br (16, 23) ----------------------------------------------------------------
    ("<p>a</p><hr><p>b</p>", "a\n\n---\n\nb"),
    ("<p>a<br>b</p>", "a\\\nb"),
    ("<p><br>a<br><br>b<br></p>", "a\\\nb"),
    ("<p>a <br> b</p>", "a\\\nb"),
    ("<p><b>bold<br></b>next</p>", "**bold**\\\nnext"),
    ("<ul><li>item<br></li><li>next<br><ul><li>sub</li></ul></li></ul>", "- item\n- next\n  - sub"),
    ("<blockquote>a<br>b</blockquote>", "> a\\\n> b"),
    # -- lists (14) ------------------------------------------------------------------------
    ("<ul><li>a</li><li>b</li></ul>", "- a\n- b"),
    ("<ol><li>a</li><li>b<ul><li>c</li><li>d</li></ul></li></ol>", "1. a\n2. b\n   - c\n   - d"),
    ("<ul><li>a<ul><li>b<ul><li>c</li></ul></li></ul></li></ul>", "- a\n  - b\n    - c"),
    ('<ol start="7"><li>a</li><li>b</li></ol>', "7. a\n8. b"),
    ('<ol start="9"><li>a</li><li>b<ul><li>c</li></ul></li></ol>', "9. a\n10. b\n    - c"),
    ('<ol start="x"><li>a</li></ol>', "1. a"),
    ("<ol><li>a</li><li></li><li>c</li></ol>", "1. a\n3. c"),
    ("<ol><li><p>para one</p><p>para two</p></li><li><p>next</p></li></ol>",
     "1. para one\n\n   para two\n2. next"),
    ("<ul><li>first\nsecond</li></ul>", "- first\n  second"),
    ("<p>Steps:</p><ol><li>a</li></ol><p>More:</p><ul><li>b</li></ul>",
     "Steps:\n\n1. a\n\nMore:\n\n- b"),
    # numbering goes on after a code block (the pages restart it), not after anything else
    (("<ol><li>a</li><li>b</li></ol><pre><code>x</code></pre><ol><li>c</li></ol>"
     "<pre><code>y</code></pre><ol><li>d</li></ol>"),
     "1. a\n2. b\n\n```\nx\n```\n\n3. c\n\n```\ny\n```\n\n4. d"),
    ("<ol><li>a</li></ol><p>text</p><ol><li>b</li></ol>", "1. a\n\ntext\n\n1. b"),
    ("<ol><li>a</li></ol><pre><code>x</code></pre><p>text</p><ol><li>b</li></ol>",
     "1. a\n\n```\nx\n```\n\ntext\n\n1. b"),
    ('<ol><li>a</li></ol><pre><code>x</code></pre><ol start="1"><li>b</li></ol>',
     "1. a\n\n```\nx\n```\n\n1. b"),
    ("<ul><li>a</li></ul><pre><code>x</code></pre><ol><li>b</li></ol>",
     "- a\n\n```\nx\n```\n\n1. b"),
    ("<li>stray item</li>", "- stray item"),
    # -- code blocks (6, 17) ---------------------------------------------------------------
    (sharegpt_pre(PY_CODE), "```python\ndef f(a_b):\n    return a_b * 2\n```"),
    (sharegpt_pre(PY_CODE, header=HEADER_OLD), "```python\ndef f(a_b):\n    return a_b * 2\n```"),
    (sharegpt_pre("first line\nsecond\n", lang=""), "```\nfirst line\nsecond\n```"),
    ("<pre><code>first line\nsecond</code></pre>", "```\nfirst line\nsecond\n```"),
    ("<pre><code>a ``` b\n````</code></pre>", "`````\na ``` b\n````\n`````"),
    (('<pre><code class="hljs language-js"><span class="hljs-keyword">if</span> '
      "(a &lt; b &amp;&amp; c) {}\n</code></pre>"), "```js\nif (a < b && c) {}\n```"),
    ("<pre><code>\n  x  \n\ty\n\n</code></pre>", "```\n\n  x  \n\ty\n```"),
    ("<pre>\nplain  text\n  kept</pre>", "```\nplain  text\n  kept\n```"),
    ("<pre><code>a<br>b</code></pre>", "```\na\nb\n```"),
    ('<pre class="language-rust"><code>fn main() {}</code></pre>', "```rust\nfn main() {}\n```"),
    ('<pre><code class="language-a`b">x</code></pre>', "```\nx\n```"),
    ("<p>a</p>" + sharegpt_pre("") + "<p>b</p>", "a\n\nb"),
    ("<ul><li>run:" + sharegpt_pre("ls\n\ncd /\n", lang="sh") + "</li></ul>",
     "- run:\n\n  ```sh\n  ls\n\n  cd /\n  ```"),
    ("<blockquote><pre><code>a\n\nb</code></pre></blockquote>", "> ```\n> a\n>\n> b\n> ```"),
    ("<ol><li>" + sharegpt_pre("x = 1\n") + "</li></ol>", "1. ```python\n   x = 1\n   ```"),
    ("<table><tr><th>k</th></tr><tr><td><pre><code>a\nb</code></pre></td></tr></table>",
     "| k |\n| --- |\n| `a b` |"),
    # -- inline code (20) ------------------------------------------------------------------
    ("<p>use <code>a_b*c</code> here</p>", "use `a_b*c` here"),
    ("<p><code>a`b</code> and <code>``</code></p>", "`` a`b `` and ``` `` ```"),
    ("<p><code>a</code><code>b</code></p>", "`a` `b`"),
    ("<p>tick`<code>c</code></p>", "tick` `c`"),
    ("<p><code> spaced  out </code></p>", "`spaced out`"),
    ("<p><code><b>no</b> <a href='x'>marks</a></code></p>", "`no marks`"),
    # -- links and images (21, 22) ---------------------------------------------------------
    ('<a href="https://x.com/a_b">docs</a>', "[docs](https://x.com/a_b)"),
    ('<a href="https://x.com">https://x.com</a>', "<https://x.com>"),
    ('<a href="page.html">page.html</a>', "[page.html](page.html)"),
    ('<a href="/path with space" title="T &quot;q&quot;">t</a>',
     '[t](</path with space> "T \\"q\\"")'),
    ('<a href="https://en.wikipedia.org/wiki/Foo_(bar)">w</a> <a href="a)b">u</a>',
     "[w](https://en.wikipedia.org/wiki/Foo_(bar)) [u](<a)b>)"),
    ('<p>see <a href="x"> the docs </a>now</p>', "see [the docs](x) now"),
    ('<a>no href</a> <a href="x"></a>', "no href"),
    ('<img src="a.png" alt="An image" title="T">', '![An image](a.png "T")'),
    ('<img alt="alt only"><img src="">', "alt only"),
    ('<a href="https://x.com"><img src="i.png" alt="logo"></a>', "[![logo](i.png)](https://x.com)"),
    # -- tables (15) -----------------------------------------------------------------------
    (("<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr>"
     "</tbody></table>"), "| a | b |\n| --- | --- |\n| 1 | 2 |"),
    (('<table><tr><td>h1</td><td>h2</td><td>h3</td></tr><tr><td colspan="2">wide|x</td></tr>'
     "<tr><td></td><td>z</td></tr></table>"),
     "| h1 | h2 | h3 |\n| --- | --- | --- |\n| wide\\|x | | |\n| | z | |"),
    ("<table><tr><th>k</th></tr><tr><td><p>a</p><p>b<br>c</p><ul><li>d</li></ul></td></tr></table>",
     "| k |\n| --- |\n| a b c d |"),
    ("<table><caption>Scores</caption><tr><th>n</th></tr></table>", "Scores\n\n| n |\n| --- |"),
    # A caption is on one line, as a cell is: its break a space, its code block a code span.
    (
        "<table><caption>1<br>2<pre>x</pre></caption><tr><td>c</td></tr></table>",
        "1 2`x`\n\n| c |\n| --- |",
    ),
    ("<table><tr><td>out<table><tr><td>in</td><td>side</td></tr></table></td></tr></table>",
     "| out in side |\n| --- |"),
    ("<p>before</p><table></table><p>after</p>", "before\n\nafter"),
    ("<ul><li>t<table><tr><th>a</th></tr><tr><td>1</td></tr></table></li></ul>",
     "- t\n\n  | a |\n  | --- |\n  | 1 |"),
    # -- math (7, 18) ----------------------------------------------------------------------
    (f"<p>Area {KATEX_INLINE} in m²</p>", "Area $\\pi r^2$ in m²"),
    (f'<div class="math math-display">{KATEX_DISPLAY}</div>', "$$E = mc^2$$"),
    (f"<p>so {KATEX_DISPLAY} done</p>", "so\n\n$$E = mc^2$$\n\ndone"),
    (f"<table><tr><th>{KATEX_DISPLAY}</th></tr></table>", "| $$E = mc^2$$ |\n| --- |"),
    ('<span class="katex">no annotation</span>', "no annotation"),
    # without the TeX, KaTeX's drawing after its MathML would print the math twice
    (('<p>Area <span class="katex"><span class="katex-mathml"><math><mi>π</mi><msup><mi>r</mi>'
      '<mn>2</mn></msup></math></span> <!-- x --> <span class="katex-html" aria-hidden="true">'
      "<span>π</span><span>r</span><span>2</span></span></span> in m²</p>"),
     "Area πr2 in m²"),
    ('<p><span class="katex-html">πr2</span> <span class="katex-mathml">x</span></p>', "πr2 x"),
    (('<math display="block"><semantics><mi>x</mi><annotation encoding="application/x-tex">'
     "x^2</annotation></semantics></math>"), "$$x^2$$"),
    # -- ShareGPT page noise (9) -----------------------------------------------------------
    ('2 / 2<div class="markdown prose w-full break-words"><p>Hi</p></div>', "Hi"),
    (('<div><div class="text-xs"><span>1 / 3</span></div><div class="markdown"><p>Hi</p></div>'
     "</div>"),
     "Hi"),
    ("<p>1 / 2 cup of flour</p>", "1 / 2 cup of flour"),
    ("<div><p>Ratio:</p>2 / 3</div>", "Ratio:\n\n2 / 3"),
    ("<div>3 / 2 apples</div>", "3 / 2 apples"),
    ("<div><p>Hello</p><div><button>Copy</button></div><div>128 chars / 20 words</div></div>",
     "Hello"),
    ("<div><p>Hello</p><div>Copy128 chars / 20 words</div></div>", "Hello"),
    ("<p>Limit: 280 chars / 50 words</p><p><b>12 chars / 3 words</b></p>",
     "Limit: 280 chars / 50 words\n\n**12 chars / 3 words**"),
    ('<p>a<button>Regenerate</button><svg><text>icon</text></svg>b</p>', "ab"),
    ("<style>p{}</style><script>alert(1)</script><noscript>js</noscript><p>ok</p>", "ok"),
    # -- broken and hostile markup (3-5, 2) ------------------------------------------------
    ("<p>a<b>b</p>c", "a**b**\n\n**c**"),
    ("<ul><li>x<li>y", "- x\n- y"),
    ("</div></span>text<p>p", "text\n\np"),
    ("<p>a\x00b\ufdd0c\ufdd1d\ufdd2e</p>", "abcde"),
    ("<table><td>1<tr><td>2</table>", "| 1 |\n| --- |\n| 2 |"),
    ("<!-- comment --><!DOCTYPE html><p>x</p>", "x"),
    ("<", "<"),
    ("", ""),
    ("<div>" * 63 + "<b>deep</b>", "**deep**"),
    ("<div>" * 64 + "<b>deep</b>", "deep"),
    ("<div>" * 64 + "<p>a</p><p>b</p>", "ab"),
    ("<div>" * 64 + "<script>x</script>y", "y"),
    ("<ul><li>" * 40 + "x", "- " * 32 + "x"),
    ("<div>" * 10_001 + "<p>a</p><p>b &amp; c</p>", "a b & c"),
    ("<div>" * 100_000 + "x" + "</div>" * 100_000, "x"),
    ("<b>" * 100_000 + "x" + "</b>" * 100_000, "x"),
    ("<ul>" * 100_000 + "x" + "</ul>" * 100_000, "x"),
    ("<ul><li>" * 100_000 + "x", "x"),
    ("<blockquote>" * 5_000 + "q", "> " * 64 + "q"),
    ("<p>" * 50_000 + "x", "x"),
    ("<a" * 100_000, ""),
    ("<div>" * 10_001 + "<" * 100_000, "<" * 100_000),
    # A slash does not close a div, and a stray end tag closes nothing: both still nest.
    ("<div/>" * 100_000 + "x", "x"),
    ("<div></x>" * 100_000 + "x", "x"),
    ("<svg>" + "<path/>" * 20_000 + "</svg>x", "x"),
    # A table whose padded grid would pass MAX_TABLE_CELLS is written as its text.
    ('<table><tr><td colspan="1000">h</td></tr>' + "<tr><td>b</td></tr>" * 100 + "</table>",
     "h" + " b" * 100),
    ("<p>x</p><table><caption>c</caption><tr>" + '<td colspan="1000">a</td>' * 101
     + "</tr></table>", "x\n\nc" + " a" * 101),
]


def _case_id(case: tuple[str, str]) -> str:
    html = case[0]
    return repr(html[:40]) + (f"+{len(html) - 40}" if len(html) > 40 else "")


@pytest.mark.parametrize(("html", "expected"), CASES, ids=[_case_id(c) for c in CASES])
def test_case(html: str, expected: str) -> None:
    assert md(html) == expected


def test_huge_turn_converts_in_bounded_time_and_space() -> None:
    paragraph = "<p>" + "word " * 200 + "<code>a_b</code></p>"
    html = '<div class="markdown prose">' + (paragraph + sharegpt_pre(PY_CODE)) * 9_000 + "</div>"
    assert len(html) > 10_000_000
    out = md(html)
    block = ("word " * 200).strip() + " `a_b`\n\n```python\ndef f(a_b):\n    return a_b * 2\n```"
    assert out == "\n\n".join([block] * 9_000)


def test_output_lines_have_no_trailing_space_outside_code() -> None:
    out = md("<p>a <b>b </b></p><ul><li>x <em>y </em></li></ul><blockquote>q </blockquote>")
    assert out == "a **b**\n\n- x *y*\n\n> q"


def test_engines() -> None:
    assert ENGINES == ("fast", "markdownify")


def test_unknown_compat_mode() -> None:
    with pytest.raises(ConfigError) as err:
        html_to_markdown("<p>x</p>", compat="pandoc")
    assert str(err.value) == "unknown compat mode 'pandoc'; known: fastchat"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('<div class="markdown prose w-full break-words dark:prose-invert"><p>x</p></div>', True),
        ("<div><p>x</p></div>", True),
        ("  \n<p>Hello</p>", True),
        ('<pre><code class="language-py">x</code></pre>', True),
        ("<ol><li>a</li></ol>", True),
        ("<H2>Title</H2>", True),
        ("<table><tr><td>1</td></tr></table>", True),
        ('2 / 2<div class="markdown prose"><p>x</p></div>', True),
        ("plain answer", False),
        ("Here is HTML:\n<div>x</div>", False),
        ('<meta name="description" content="x">', False),
        ("<?php\necho 1;", False),
        ("<https://example.com>", False),
        ("<Formik\ninitialValues={{}}", False),
        ("<div>unfinished", False),
        ("<details><summary>x</summary></details>", False),
        ("<divider>x</divider>", False),
        ("", False),
    ],
)
def test_looks_like_html(text: str, expected: bool) -> None:
    assert looks_like_html(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5 / 5如果要讓小學生採訪這個問題", "如果要讓小學生採訪這個問題"),
        ("2 / 2Write a poem", "Write a poem"),
        ("2 / 2100 words essay", "2 / 2100 words essay"),
        ("1 / 2000 chance", "1 / 2000 chance"),
        ("1 / 2 cup of flour", "1 / 2 cup of flour"),
        ("1 / 2, 1 / 3 and 1 / 4: which is biggest?", "1 / 2, 1 / 3 and 1 / 4: which is biggest?"),
        ("3 / 4? Is that more than 2 / 3?", "3 / 4? Is that more than 2 / 3?"),
        ('2 / 2"quoted"', '2 / 2"quoted"'),
        ("2 / 2Écris un poème", "Écris un poème"),
        ("3 / 2x", "3 / 2x"),
        ("1 / 1x", "1 / 1x"),
        ("3 / 4ths of the class passed", "3 / 4ths of the class passed"),
        ("1 / 3rd of people", "1 / 3rd of people"),
        ("2 / 2this is my question", "this is my question"),
        ("2 / 2Standard deviation?", "Standard deviation?"),
        ("no counter", "no counter"),
    ],
)
def test_strip_regeneration_counter_of_human_turns(text: str, expected: str) -> None:
    assert strip_regeneration_counter(text) == expected
