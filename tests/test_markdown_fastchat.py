"""compat="fastchat": FastChat's clean_sharegpt.html_to_markdown, bugs included.

Every expected string below is what FastChat's function (fastchat/data/clean_sharegpt.py) gives
when run with markdownify 0.11.6, the version FastChat pins; they were produced by running it.
"""
from __future__ import annotations

import pytest

from convkit.errors import InputError
from convkit.markdown import html_to_markdown


def fc(html: str) -> str:
    return html_to_markdown(html, compat="fastchat")


HEADER = (
    '<div class="flex items-center relative text-gray-200 bg-gray-800 px-4 py-2 text-xs '
    'font-sans"><span class="">python</span><button class="flex ml-auto gap-2"><svg '
    'class="h-4 w-4"><path d="M16 4h2"></path></svg>Copy code</button></div>'
)
PRE = (
    f'<pre><div class="bg-black mb-4 rounded-md">{HEADER}<div class="p-4 overflow-y-auto">'
    '<code class="!whitespace-pre hljs language-python"><span class="hljs-keyword">def</span> '
    '<span class="hljs-title function_">f</span>(<span class="hljs-params">a_b</span>):\n    '
    '<span class="hljs-keyword">return</span> a_b * <span class="hljs-number">2</span>\n'
    "</code></div></div></pre>"
)
KATEX = (
    '<span class="katex"><span class="katex-mathml"><math xmlns="http://www.w3.org/1998/Math/'
    'MathML"><semantics><mrow><mi>π</mi><msup><mi>r</mi><mn>2</mn></msup></mrow><annotation '
    'encoding="application/x-tex">\\pi r^2</annotation></semantics></math></span><span '
    'class="katex-html" aria-hidden="true"><span class="base"><span class="mord mathnormal">π'
    '</span><span class="mord"><span class="mord mathnormal">r</span><span class="msupsub">2'
    "</span></span></span></span></span>"
)

CASES = [
    # escaping noise in prose
    ("<p>snake_case and 2*3*4</p>", "snake\\_case and 2\\*3\\*4"),
    # a code block with the "Copy code" header is rewritten into a proper fence
    (PRE, "```python\ndef f(a_b):\n    return a_b * 2\n```"),
    # without the header the first code line becomes the fence's language, and the next
    # block's language becomes a code line
    ("<pre><code>x = 1\ny = 2</code></pre><p>and</p>" + PRE,
     "```x = 1\ny = 2\n```\nand\n```\npython\ndef f(a_b):\n    return a_b * 2\n```"),
    # math three times
    (f"<p>The area is {KATEX}.</p>", "The area is πr2\\pi r^2πr2."),
    # the regeneration-counter rule eats content
    ("<p>1 / 2 cup of flour</p>", "cup of flour"),
    ('2 / 2<div class="markdown prose"><p>Hi</p></div>', "Hi"),
    (('<div class="markdown prose"><p>Hello</p><div><button>Copy</button><div>12 chars / 3 words'
     "</div></div></div>"), "Hello"),
    # an empty block keeps its fence once "Copy code" has been rewritten away
    ('<p>Empty:</p><pre><div class="bg-black">' + HEADER + '<div><code class="!whitespace-pre '
     'hljs language-python"></code></div></div></pre><p>done</p>', "Empty:\n```python\n```\ndone"),
    # nested lists indent with tabs and cycle the bullets
    ("<ul><li>a<ul><li>b<ul><li>c</li></ul></li></ul></li></ul>", "* a\n\t+ b\n\t\t- c"),
    # numbering restarts after a code block
    ("<ol><li>one</li><li>two</li></ol>" + PRE + "<ol><li>three</li></ol>",
     "1. one\n2. two\n```python\ndef f(a_b):\n    return a_b * 2\n```\n1. three"),
    ("<h1>Title</h1><h2>Sub</h2><h3>Third</h3>", "Title\n=====\n\nSub\n---\n\n### Third"),
    (("<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr>"
     "</tbody></table>"), "| a | b |\n| --- | --- |\n| 1 | 2 |"),
    ("<table><tbody><tr><td>x</td><td>y</td></tr></tbody></table>",
     "|  |  |\n| --- | --- |\n| x | y |"),
    (('<p>a<br>b</p><blockquote><p>q</p></blockquote><hr><p><a href="https://x.com">https://x.com'
     '</a> <a href="u_v">link</a> <img src="i.png" alt="A"></p>'),
     "a  \nb\n> q\n> \n> \n\n---\n\n<https://x.com> [link](u_v) ![A](i.png)"),
    ("<p><strong>Note:</strong> use <code>a_b</code> and <em>this</em></p>",
     "**Note:** use `a_b` and *this*"),
    # "\n\n\n" becomes "\n"
    ("<p>a</p><p>b</p><ol><li>c</li></ol><p>d</p>", "a\n\nb\n\n1. c\n\nd"),
    ("<div><p>Line one\nline two</p></div>", "Line one\nline two"),
    # text BeautifulSoup would warn about is converted like any other, without a warning
    ("hello.txt", "hello.txt"),
    ("https://example.com", "https://example.com"),
    ('<?xml version="1.0"?><root>x</root>', 'xml version="1.0"?x'),
]


@pytest.mark.parametrize(("html", "expected"), CASES, ids=[repr(c[0][:40]) for c in CASES])
def test_fastchat_output(html: str, expected: str) -> None:
    assert fc(html) == expected


@pytest.mark.parametrize(
    ("html", "message"),
    [
        ('<ol start="x"><li>a</li></ol>',
         "FastChat's converter fails on <ol start='x'> (ValueError)"),
        ("<hn>x</hn>", "FastChat's converter fails on a <hn> tag (TypeError)"),
        ("<soup>x</soup>", "FastChat's converter fails on a <soup> tag (TypeError)"),
        ("<b>" * 1_000 + "x",
         "HTML nested deeper than 980 elements: FastChat's converter fails here (RecursionError)"),
    ],
)
def test_inputs_fastchat_fails_on_raise_input_error(html: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        fc(html)
    assert str(err.value) == message


def test_deep_nesting_within_fastchats_reach_converts() -> None:
    # FastChat's own regexes remove <div> tags, so any number of them is harmless.
    assert fc("<div>" * 100_000 + "x") == "x"
    assert fc("<b>" * 900 + "x" + "</b>" * 900) == "**" * 900 + "x" + "**" * 900


def test_large_list_is_not_quadratic() -> None:
    out = fc("<ol>" + "<li>i</li>" * 50_000 + "</ol>")
    assert out.endswith("50000. i")
