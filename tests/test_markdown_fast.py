"""The fast engine gives exactly the reference engine's output.

The reference's ``CASES`` run against both engines, generated markup is converted by both and
compared, and so is every gpt turn of the real pages. Without the compiled engine these tests
skip, unless ``CONVKIT_REQUIRE_EXT=1`` (CI) makes a missing or disabled engine a failure.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import markup_gen
from test_markdown_reference import CASES, PY_CODE, _case_id, sharegpt_pre

from convkit.errors import ConfigError
from convkit.markdown import DEFAULT_ENGINE, ENGINES, _layout, fast, html_to_markdown, reference
from convkit.markdown._rules import _SPACE_RUN

REQUIRE_EXT = os.environ.get("CONVKIT_REQUIRE_EXT", "") not in ("", "0")


def both(html: str) -> tuple[str, str]:
    return reference.html_to_markdown(html), html_to_markdown(html, engine="fast")


def test_the_compiled_engine_is_in_use_when_required() -> None:
    if not REQUIRE_EXT:
        pytest.skip("set CONVKIT_REQUIRE_EXT=1 to require the compiled engine (CI does)")
    assert fast.AVAILABLE, fast.UNAVAILABLE_REASON


def test_canary_outputs_are_the_reference_engines() -> None:
    # The fast engine checks itself at import against these, without importing the reference.
    assert fast.CANARY_OUTPUTS == tuple(reference.html_to_markdown(c) for c in fast.CANARIES)


def test_the_fast_engine_converts_every_tag_the_reference_converts(_fast) -> None:
    # A converter added to the reference engine must be added to the fast one too.
    handled, text_converters = _fast._handled_tags()
    converter = reference.ReferenceConverter
    assert sorted(set(converter.CONVERTED) - handled) == []
    for name in set(converter.CONVERTED) & text_converters:
        assert getattr(converter, "convert_" + name) is converter.convert_sub, name


def test_importing_convkit_does_not_import_markdownify() -> None:
    code = "import sys, convkit; print(sorted({'markdownify', 'bs4'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"


# -- API ---------------------------------------------------------------------------------------


def test_engines() -> None:
    assert ENGINES == ("fast", "markdownify")
    assert DEFAULT_ENGINE == "fast"


def test_unknown_engine() -> None:
    with pytest.raises(ConfigError) as err:
        html_to_markdown("<p>x</p>", engine="pandoc")
    assert str(err.value) == "unknown HTML engine 'pandoc'; known: fast, markdownify"


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_converts(engine: str) -> None:
    assert html_to_markdown("<p>a <b>b</b></p>", engine=engine) == "a **b**"


def test_fastchat_compat_is_the_same_whatever_the_engine() -> None:
    html = '<div><p>a_b</p><pre><code class="language-py">x</code></pre></div>'
    assert html_to_markdown(html, compat="fastchat", engine="fast") == html_to_markdown(
        html, compat="fastchat", engine="markdownify"
    )


def test_pure_python_switch_falls_back_to_the_reference() -> None:
    code = (
        "from convkit.markdown import fast, html_to_markdown\n"
        "print(fast.AVAILABLE, fast.UNAVAILABLE_REASON)\n"
        "print(html_to_markdown('<p>a <b>b</b></p>', engine='fast'))\n"
    )
    env = dict(os.environ, CONVKIT_PUREPYTHON="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out == "False CONVKIT_PUREPYTHON is set\na **b**\n"


def test_canaries_pass(_fast) -> None:
    for html in fast.CANARIES:
        assert _fast.convert(html) == reference.html_to_markdown(html)


def test_a_failed_check_leaves_the_engine_off(_fast) -> None:
    # bind() refuses a tree whose nodes do not read as it expects (text and comment swapped).
    def broken_parse(html):
        from selectolax.lexbor import LexborHTMLParser

        html = '<p class="k" data-x>a<b>b</b>c</p>e<!--d-->'
        return LexborHTMLParser(html, is_fragment=True).root

    import selectolax.lexbor as lexbor

    with pytest.raises(RuntimeError, match="layout differs"):
        _fast.bind(lexbor.__file__, lexbor.create_tag, broken_parse)
    with pytest.raises(RuntimeError, match="cannot open"):
        _fast.bind("/nonexistent/lexbor.so", lexbor.create_tag, broken_parse)
    # The real binding again, for the other tests.
    from convkit.markdown._lexbor import parse

    _fast.bind(lexbor.__file__, lexbor.create_tag, parse)


# -- the reference's cases ---------------------------------------------------------------------


@pytest.mark.parametrize(("html", "expected"), CASES, ids=[_case_id(c) for c in CASES])
def test_case_fast(_fast, html: str, expected: str) -> None:
    assert _fast.convert(html) == expected


@pytest.mark.parametrize(("html", "expected"), CASES, ids=[_case_id(c) for c in CASES])
def test_case_reference(html: str, expected: str) -> None:
    assert reference.html_to_markdown(html) == expected


# -- flaws of the reference fixed in both engines ----------------------------------------------


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        # A top-level <pre> takes its own <code>, not a later sibling's (selectolax searches
        # the whole fragment from the first top-level node).
        ('<pre class="language-py">y</pre><p><code class="language-js">x</code></p>',
         "```py\ny\n```\n\n`x`"),
        # KaTeX without an annotation of its own is text, whatever follows it.
        ('<span class="katex">no annotation</span><math><annotation '
         'encoding="application/x-tex">b</annotation></math>', "no annotation$b$"),
        ('<annotation class="katex" encoding="application/x-tex">a</annotation>tail', "atail"),
        # Character references to the marker characters are removed like the characters.
        ("<p>x &#xfdd0; y&#64977;z &#xFDD2</p>", "x yz"),
        ('<img alt="a&#xfdd1;b" src="s">', "![ab](s)"),
        ('<pre><code class="language-p&#xFDD0;y">c&#xfdd0;</code></pre>', "```py\nc\n```"),
        ('<span class="ka&#xfdd2;tex"><math><annotation encoding="application/x-tex">t&#xfdd1;'
         "</annotation></math></span>", "$t$"),
        ("<div>" * 10_001 + "a&#xfdd0;b" + "<" * 10_000, "ab" + "<" * 10_000),
    ],
)
def test_fixed_in_both_engines(html: str, expected: str) -> None:
    assert both(html) == (expected, expected)


# -- hostile input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        "<div>" * 9_000 + "deep" + "</div>" * 9_000,
        "<blockquote>" * 5_000 + "q",
        "<ul><li>" * 3_000 + "item",
        "<b><i>" * 4_000 + "x",
        "<span>" * 9_999 + "<p>x</p>",
        "<table><tr><td>" * 2_000 + "cell",
        '<pre><code class="language-py">' + "x\n" * 200_000 + "</code></pre>",
        "<p>" + "a \n " * 300_000 + "</p>",
        "<p>" + "<br>" * 100_000 + "x</p>",
        "<a href='u'>" * 2_000 + "link",
        "\ufdd0\ufdd1\ufdd2<p>\x00x</p>",
        # At the table cap (100 x 1000 cells): still a table, padded alike by both engines.
        "<table>" + '<tr><td colspan="1000">a</td></tr>' * 100 + "</table>",
    ],
    ids=lambda h: repr(h[:30]),
)
def test_hostile_input_gives_the_same_output(_fast, html: str) -> None:
    assert _fast.convert(html) == reference.html_to_markdown(html)


def test_huge_turn_is_fast_and_identical(_fast) -> None:
    paragraph = "<p>" + "word " * 200 + "<code>a_b</code></p>"
    html = '<div class="markdown prose">' + (paragraph + sharegpt_pre(PY_CODE)) * 9_000 + "</div>"
    assert len(html) > 10_000_000
    start = time.perf_counter()
    out = _fast.convert(html)
    elapsed = time.perf_counter() - start
    assert out == reference.html_to_markdown(html)
    assert elapsed < 5, f"{elapsed:.1f}s for 10 MB"


# -- generated markup --------------------------------------------------------------------------

TAGS = [
    "p", "div", "span", "b", "strong", "em", "i", "code", "kbd", "pre", "ul", "ol", "li",
    "table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption", "blockquote", "h1", "h3",
    "a", "img", "br", "hr", "del", "s", "sup", "q", "button", "svg", "script", "math",
    "annotation", "semantics", "section", "search", "u", "template", "xmp", "details",
]
ATTRS = [
    "", ' class="language-py"', ' class="katex"', ' class="katex-display"', ' href="u v"',
    ' href="https://x.y"', ' src="i.png" alt="a_b"', ' start="3"', ' start="٣"',
    ' colspan="2"', ' colspan="0"', ' encoding="application/x-tex"', ' display="block"',
    ' title="t &quot;q&quot;"', ' class="lang&#xfdd0;uage-js"', " href", ' xlink:href="w"',
]
PIECES = [
    " ", "\n", "\t", "\r", "*", "_", "`", "``", "#", ">", "-", "|", "\\", "<", "&", ";", "1",
    ".", "/", "a", "é", "\u00a0", "\ufdd0", "&#xfdd1;", "&#64976;", "&amp;", "<!--c-->",
    "<![CDATA[x y]]>", "2 / 2", "1 chars / 2 words", "https://a.b", "😀",
]
TEXT = st.lists(st.sampled_from(PIECES), max_size=10).map("".join)


def markup() -> st.SearchStrategy[str]:
    return markup_gen.markup(TAGS, ATTRS, TEXT)


@settings(max_examples=1500, deadline=None)
@given(markup())
def test_generated_markup_gives_the_same_output(_fast, html: str) -> None:
    assert _fast.convert(html) == reference.html_to_markdown(html)


LONG_TEXT_PIECES = [
    "word", "a", " ", "  ", "\n", "\t", "\r", "\x0c", "\ufdd0", "\uff01", "é", "x" * 20, " \n ",
]


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(st.sampled_from(LONG_TEXT_PIECES), max_size=40).map("".join),
    st.sampled_from(["<p>{}</p>", "<p>a <b>{}</b> z</p>", "<ul><li>{}</li></ul>", "{}<p>x</p>"]),
)
def test_long_text_collapses_as_the_reference(_fast, text: str, frame: str) -> None:
    # Long enough for the sixteen-byte steps that copy words and single spaces whole, with
    # every white-space byte, double spaces, markers and other three-byte characters at any
    # offset of a step.
    html = frame.format(text)
    assert _fast.convert(html) == reference.html_to_markdown(html)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=" \n\t>a\\#-1.`\ufdd0\ufdd1\ufdd2é", max_size=30))
def test_finish_is_the_layout_finish(_fast, text: str) -> None:
    assert _fast.finish(text) == _layout.finish(text)


# What may follow a soft break: every kind of line that starts a block, near misses, case, and
# lines that are not ASCII (a Unicode digit, a long s that folds to "s", markers).
LINE_PIECES = [
    "\ufdd2\n", "\n", " ", "\t", "-", "*", "_", "=", "#", ">", "`", "~", "<", "/", "1", "12",
    "1234567890", ".", ")", "div", "DIV", "Pre", "p", "h1", "h7", "script", "textarea", "!--",
    "?", "![CDATA[", "![cdata[", "!x", "\\", "\ufdd1", "é", "\u0663", "\u017f", "a",
    "blockquote", "menuitem", "/>", "\ufdd0", "\ufdd2",
]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(LINE_PIECES), max_size=14).map("".join))
def test_soft_breaks_are_the_layout_rules(_fast, text: str) -> None:
    assert _fast.finish(text) == _layout.finish(text)


# -- real pages --------------------------------------------------------------------------------


def _gpt_turns(shared_data: Path) -> list[str]:
    root = shared_data / "sharegpt_html"
    turns = []
    for path in sorted(root.rglob("*.json")):
        with path.open(encoding="utf-8") as f:
            records = json.load(f)
        for record in records:
            if "html" in record:  # the converter's own test cases
                turns.append(record["html"])
            for turn in record.get("conversations", ()):
                if turn["from"] == "gpt":
                    turns.append(turn["value"])
    return turns


@pytest.mark.realdata
def test_every_real_gpt_turn_gives_the_same_output(_fast, shared_data: Path) -> None:
    turns = _gpt_turns(shared_data)
    assert len(turns) == 11_603 + 13 + 2
    different = [
        i for i, html in enumerate(turns) if _fast.convert(html) != reference.html_to_markdown(html)
    ]
    assert different == []


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=" \n\t*a\ufdd1\ufdd2`", max_size=12), st.sampled_from(["**", "*", "~~"]))
def test_compiled_helpers_are_the_reference_helpers(_fast, text: str, mark: str) -> None:
    compiled = _fast._helpers()
    assert compiled["_edge"](text) == reference._edge(text)
    assert compiled["_split_edges"](text) == reference._split_edges(text)
    assert compiled["_wrap"](text, mark) == reference._wrap(text, mark)
    assert compiled["_block_text"](text) == reference._block_text(text)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=" \n\t\r\u00a0a\u00e9\ufdd1\ufdd2\U0001f600", max_size=16))
def test_compiled_space_runs_are_the_pattern(_fast, text: str) -> None:
    # Every character width (1, 2 and 4 bytes), and runs at both ends.
    assert _fast._helpers()["_spaces"](text) == _SPACE_RUN.sub(" ", text)


_THREADS = """
import sys
from concurrent.futures import ThreadPoolExecutor
from convkit.markdown import _fast
items = [
    '<p>see <a href="https://x.y/%d" title="t">link %d</a>, <img src="i%d.png" alt="a">'
    '<ol start="%d"><li>x <b>y</b></li></ol></p><table><tr><td>c%d</td></tr></table>'
    % ((i,) * 5)
    for i in range(1500)
]
alone = [_fast.convert(x) for x in items]
sys.setswitchinterval(1e-6)  # threads switch inside the walk's calls into Python
with ThreadPoolExecutor(4) as pool:
    for _ in range(2):
        print(sum(a != b for a, b in zip(alone, pool.map(_fast.convert, items))))
"""


def _run_apart(script: str, folder) -> tuple[int, str, str]:
    """``script`` run by a new interpreter in ``folder``, outside the checkout, with this
    process's path (the package under test is imported): its exit code, output and errors."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True, text=True, check=False, cwd=folder, env=env,
    )
    return done.returncode, done.stdout, done.stderr


def test_threads_converting_at_once_get_what_each_would_alone(_fast, tmp_path) -> None:
    # The walk calls into Python (link targets, tables), where another thread may convert:
    # it must not clean the document the first is walking (that crashed the interpreter).
    assert _run_apart(_THREADS, tmp_path) == (0, "0\n0\n", "")


_THREADS_PARSING = """
import sys
from concurrent.futures import ThreadPoolExecutor
from convkit.markdown import _fast
items = [
    "<div>" + "<p>w%d <b>b</b> <code>c</code></p><ul><li>%d</li></ul>" % (i, i) * (200 + i % 7 * 300)
    + "</div>"
    for i in range(120)
]
items.insert(60, "<div>" + "<p>big <i>it</i></p>" * 70000 + "</div>")  # renews the document
alone = [_fast.convert(x) for x in items]
with ThreadPoolExecutor(4) as pool:
    for _ in range(2):
        print(sum(a != b for a, b in zip(alone, pool.map(_fast.convert, items))))
"""


def test_threads_parsing_at_once_get_what_each_would_alone(_fast, tmp_path) -> None:
    # lexbor parses without the GIL, so threads parse at the same time, each into a document
    # of its own but the one holding the engine's, which a message over a megabyte renews.
    assert _run_apart(_THREADS_PARSING, tmp_path) == (0, "0\n0\n", "")


def test_a_message_over_a_megabyte_renews_the_engines_document(_fast) -> None:
    # The engine parses into one lexbor document, replaced after a message this large; the
    # messages before and after it convert as they would alone.
    big = "<div>" + "<p>word <b>bold</b> and <i>it</i></p>" * 30000 + "</div>"
    assert len(big.encode()) > 1 << 20
    small = '<div class="markdown prose"><p>a <code>b</code></p><ul><li>c</li></ul></div>'
    expected_small = reference.html_to_markdown(small)
    expected_big = reference.html_to_markdown(big)
    assert fast.html_to_markdown(small) == expected_small
    assert fast.html_to_markdown(big) == expected_big
    assert fast.html_to_markdown(small) == expected_small
    assert fast.html_to_markdown(big) == expected_big
