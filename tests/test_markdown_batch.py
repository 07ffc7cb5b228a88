"""The compiled engine's batches: :class:`BatchConverter` converts lists of messages on a thread
that never takes the GIL, handing what needs Python back to :func:`_fast.convert`."""
from __future__ import annotations

import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_markdown_fast import _gpt_turns, markup
from test_markdown_reference import CASES

KATEX = (
    '<span class="katex"><math><annotation encoding="application/x-tex">x</annotation>'
    "</math></span>"
)
DISPLAY = (
    '<div class="katex-display"><math><annotation encoding="application/x-tex"> a\n b '
    "</annotation></math></div>"
)
MARKED = (
    '<math display="bl&#xfdd0;ock"><annotation encoding="application/x-tex">y</annotation>'
    "</math>"
)


@pytest.fixture
def converter(_fast):
    # The thread alone: what it converts and what it hands back does not depend on timing.
    with _fast.BatchConverter(share=False) as c:
        yield c


def test_a_batch_gives_every_case_its_expected_output(_fast) -> None:
    htmls = [html for html, _ in CASES]
    assert _fast.convert_many(htmls) == [expected for _, expected in CASES]


@pytest.mark.parametrize(
    ("html", "fallbacks"),
    [
        ('<div class="markdown prose"><p>plain <b>bold</b> <code>c</code></p></div>', 0),
        ('<pre><code class="language-py">x = 1</code></pre>', 0),
        ("<ul><li>a</li><li>b<ol><li>c</li></ol></li></ul><blockquote>q<br>r</blockquote>", 0),
        ("<p>a\nb</p><h2>t</h2><hr><del>d</del><q>q</q><custom-tag>x</custom-tag>", 0),
        ("\ufdd0<p>\x00x&#xfdd1;</p>", 0),  # NUL and markers: removed without Python
        ('<p><a href="https://a.b">l</a> <a href=" x(y) ">z</a> <a href="a b">c</a></p>', 0),
        ('<p><a href="https://a.b" title="t">l</a></p>', 1),  # a title: Python's rules
        ('<p><a href="https://é.b">l</a></p>', 1),
        ('<p><img src="i.png" alt="a"></p>', 1),
        ('<table><caption>c</caption><tr><td colspan="2">1|</td></tr><tr><td>2</td></tr></table>', 0),
        ("<p><b>x</b><table><tr><td>in</td></tr></table> y</p>", 0),  # inline: as words
        ('<table><tr><td colspan="\u0663">1</td></tr></table>', 1),  # a Unicode digit
        ('<ol start="3"><li>x</li></ol>', 1),
        (KATEX, 0),
        (DISPLAY, 0),
        ('<span class="katex\u00a0x"><math><annotation>x</annotation></math></span>', 1),
        (MARKED, 1),  # a marker in the value: Python's rules remove it first
        ('<pre><code class="language-é">x</code></pre>', 1),  # non-ASCII: the pattern decides
        ("<p>a\n- b\n<div>c\n1) d</p>", 0),  # lines that start blocks, decided in C
        ("<p>a\n\u0663. b</p>", 1),  # a line that is not ASCII: the patterns decide
        ("<p>2 / 2</p>", 0),
        ("2 / 2<p>x</p>", 1),  # top-level text with a "/": page noise is decided in Python
        ("\ud800<p>x</p>", 1),  # a lone surrogate: no UTF-8 to hand to the thread
        ("<div>" * 10_001 + "deep", 1),  # past MAX_NESTING "<": too_deep decides
    ],
    ids=lambda v: repr(v[:40]) if isinstance(v, str) else str(v),
)
def test_what_needs_python_is_converted_with_it(converter, _fast, html, fallbacks) -> None:
    converter.submit(["<p>first</p>", html, "<p>last</p>"])
    assert converter.collect() == ["first", _fast.convert(html), "last"]
    assert converter.last_fallbacks == fallbacks


@settings(max_examples=300, deadline=None)
@given(st.lists(markup(), max_size=6))
def test_generated_markup_converts_as_alone(_fast, htmls: list[str]) -> None:
    # Whatever part of a message needs Python, the thread stops there and leaves it whole.
    assert _fast.convert_many(htmls) == [_fast.convert(h) for h in htmls]


def test_lists_follow_one_another(converter, _fast) -> None:
    big = "<div>" + "<p>word <b>bold</b> and <i>it</i></p>" * 30_000 + "</div>"
    assert len(big.encode()) > 1 << 20  # renews the thread's document
    lists = [["<p>a</p>", big, "<p>b <i>c</i></p>"], [], ["<h1>t</h1>"], [big, "<ul><li>x</li></ul>"]]
    for htmls in lists:
        converter.submit(htmls)
        assert converter.collect() == [_fast.convert(h) for h in htmls]
    assert converter.last_seconds > 0


def test_an_error_is_returned_in_its_place(converter, _fast, monkeypatch) -> None:
    def failing(html: str) -> str:
        raise ValueError(f"cannot convert {html}")

    monkeypatch.setattr(_fast, "convert", failing)
    converter.submit(["<p>x</p>", '<a href="u" title="t">l</a>'])
    got = converter.collect()
    assert got[0] == "x"
    assert isinstance(got[1], ValueError) and str(got[1]) == 'cannot convert <a href="u" title="t">l</a>'


def test_misuse_says_what_is_wrong(_fast) -> None:
    converter = _fast.BatchConverter()
    with pytest.raises(RuntimeError, match="^collect without a submitted list$"):
        converter.collect()
    with pytest.raises(TypeError, match="^message 1 is int, not str$"):
        converter.submit(["<p>x</p>", 1])
    converter.submit(["<p>x</p>"])
    with pytest.raises(RuntimeError, match="^submit before the previous list was collected$"):
        converter.submit(["<p>y</p>"])
    converter.close()  # waits for the pending list first
    converter.close()
    with pytest.raises(RuntimeError, match="^the converter is closed$"):
        converter.submit(["<p>x</p>"])


def _converted_while_this_thread_holds_the_gil(converter, htmls: list[str]) -> bool:
    # With a switch interval of an hour, a thread asking for the GIL would get it only when
    # this one waits: while this one loops in Python, the list is converted only by a thread
    # that never asks (the bound is for failing, not for speed).
    interval = sys.getswitchinterval()
    sys.setswitchinterval(3600)
    try:
        converter.submit(htmls)
        deadline = time.monotonic() + 60
        while not converter.converted and time.monotonic() < deadline:
            pass
        return converter.converted
    finally:
        sys.setswitchinterval(interval)
        converter.collect()


def test_the_thread_never_takes_the_gil(converter) -> None:
    htmls = [html for html, _ in CASES] * 20
    assert _converted_while_this_thread_holds_the_gil(converter, htmls)
    assert 0 < converter.last_fallbacks < len(htmls)


@pytest.mark.realdata
def test_every_real_gpt_turn_in_one_batch(_fast, shared_data) -> None:
    turns = _gpt_turns(shared_data)
    alone = [_fast.convert(html) for html in turns]  # also learns every tag id they hold
    with _fast.BatchConverter(share=False) as converter:
        converter.submit(turns)
        assert converter.collect() == alone
        # Images (18 messages), lines after a soft break that might start a block and are not
        # ASCII (13), a link with a title need Python; 11,618 in all.
        assert converter.last_fallbacks == 32
        assert _converted_while_this_thread_holds_the_gil(converter, turns)


def test_digests_are_the_dedup_digests_of_the_markdown(_fast) -> None:
    import hashlib

    from convkit import _scan
    from convkit.scan import normalised_utf8

    if _scan.digest_function() is None:
        pytest.skip("libcrypto's SHA-256 is not found in this process: dedup hashes itself")
    spaces = "".join(chr(c) for c in range(0x10000) if chr(c).isspace())
    htmls = [
        f"<pre><code>a{spaces}b {spaces[::-1]} c\u00e9\u3001d  </code></pre>",
        "<p>One  two</p><p>three\u00a0four</p>",
        "<p></p>",
        '<img src="x.png" alt="a">',  # needs Python: no digest from the thread
    ]
    with _fast.BatchConverter(digests=True, share=False) as c:
        c.submit(htmls)
        got = c.collect()
        digests = c.last_digests
    assert digests[:3] == [hashlib.sha256(normalised_utf8(md)).digest() for md in got[:3]]
    assert digests[3] is None
    assert spaces[spaces.index("\x1c"):] in got[0]  # the white space reached the hashed text
    with _fast.BatchConverter() as c:
        c.submit(htmls)
        c.collect()
        assert c.last_digests is None


def _wait_converted(converter) -> None:
    deadline = time.monotonic() + 60
    while not converter.converted and time.monotonic() < deadline:
        time.sleep(0.001)


@pytest.mark.parametrize("digests", [False, True])
def test_collect_converts_from_the_end_while_the_thread_is_busy(_fast, digests) -> None:
    htmls = [html for html, _ in CASES if len(html) < 1000] * 20
    alone = [_fast.convert(h) for h in htmls]
    with _fast.BatchConverter(digests=digests) as c:
        for _ in range(20):  # a caller descheduled long enough would find the list done
            c.submit(htmls)
            # At once: the thread has just started, and collect takes messages from the end.
            assert c.collect() == alone
            if c.last_shared:
                break
        assert 0 < c.last_shared < len(htmls)
        assert c.last_caller_seconds > 0
        if c.last_digests is not None:  # the caller does not hash: dedup does, later
            assert len(c.last_digests) == len(htmls)
            assert c.last_digests[-c.last_shared :] == [None] * c.last_shared
            thread = len(htmls) - c.last_shared
            assert any(d is not None for d in c.last_digests[:thread])
        # A list the thread has finished is only collected.
        c.submit(htmls)
        _wait_converted(c)
        assert c.collect() == alone
        assert c.last_shared == 0
        # Without sharing, the caller only waits.
    with _fast.BatchConverter(digests=digests, share=False) as c:
        c.submit(htmls)
        assert c.collect() == alone
        assert c.last_shared == 0


def test_an_interrupted_collect_still_closes(_fast, monkeypatch) -> None:
    # Ctrl-C while collect converts (messages it took over, or ones that need Python): the
    # converter still closes cleanly, without converting what was left, and its thread ends.
    def interrupted(html: str) -> str:
        raise KeyboardInterrupt

    import threading

    def converter_threads() -> int:
        return sum(t.name == "convkit-html" for t in threading.enumerate())

    htmls = [html for html, _ in CASES if len(html) < 1000] * 20 + ['<img src="x" alt="a">']
    before = converter_threads()
    c = _fast.BatchConverter()
    assert converter_threads() == before + 1
    monkeypatch.setattr(_fast, "convert", interrupted)
    c.submit(htmls)
    with pytest.raises(KeyboardInterrupt):
        c.collect()
    c.close()
    assert converter_threads() == before
    with pytest.raises(RuntimeError, match="^the converter is closed$"):
        c.submit(["<p>x</p>"])


@settings(max_examples=100, deadline=None)
@given(st.lists(markup(), max_size=40), st.integers(0, 3))
def test_shared_lists_convert_as_alone_wherever_the_two_meet(_fast, htmls, pause) -> None:
    # The thread and the caller meet anywhere in the list (or not at all); each message is
    # converted once, by one of them, and the list comes back in order.
    with _fast.BatchConverter() as c:
        c.submit(htmls)
        time.sleep(pause / 10_000)
        assert c.collect() == [_fast.convert(h) for h in htmls]
        assert 0 <= c.last_shared <= len(htmls)


_DETECT_PIECES = [
    "<", ">", "/", " ", "\n", "\t", "\x0b", "\x1c", "\u00a0", "\u3000", "\u2028", "1", "22",
    "12345", "\u0663", "\uff11", "div", "DiV", "p", "pre", "PRE", "ol", "h3", "h7", "table",
    "blockquote", "BLOCKQUOTE", "section", "\u017fection", "article", "d\u0130v", "d\u0131v",
    "bloc\u212aquote", "dl", "hr", "ul", "x", "é", "=", '"', "class", "<div>", "</div>",
    "2 / 2", "/>",
]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_DETECT_PIECES), max_size=12).map("".join))
def test_the_threads_page_html_rule_is_looks_like_html(_fast, text: str) -> None:
    # Decided in C where only ASCII decides; left to the rule (None) where Unicode white
    # space, digits or case folding could.
    from convkit.markdown.detect import looks_like_html

    got = _fast.page_html(text)
    if got is not None:
        assert got is looks_like_html(text)
    if text.isascii():
        assert got is looks_like_html(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('<div class="markdown prose"><p>x</p></div>', True),
        ("2 / 2<div><p>x</p></div>\n", True),
        ("<p>x</p>\u3000", None),  # U+3000 is white space to rstrip: the rule decides
        ("\u00a0<p>x</p>", None),
        ("<\u017fection>x</section>", None),  # "ſ" folds to "s" under re.IGNORECASE
        ("<p\u00a0class=x>y</p>", None),
        ("<divider>x</divider>", False),
        ("Here is HTML:\n<div>x</div>", False),
        ("<p>unfinished", False),
        ("12345/2<p>x</p>", False),
    ],
)
def test_page_html_examples(_fast, text: str, expected: bool | None) -> None:
    from convkit.markdown.detect import looks_like_html

    assert _fast.page_html(text) is expected
    assert expected is None or looks_like_html(text) is expected


def test_detect_leaves_what_is_not_page_html(_fast) -> None:
    htmls = [
        "<p>a <b>b</b></p>",
        "plain **markdown**",
        "<p>x</p>\u3000",  # decided by the rule, on the calling thread: page HTML
        "Here is HTML:\n<div>x</div>",
        "\ud800<p>y</p>",  # no UTF-8: the rule decides (not page HTML)
        "<p>z\ud800</p>",  # no UTF-8: the rule decides (page HTML), then convert
    ]
    expected = ["a **b**", None, _fast.convert(htmls[2]), None, None, _fast.convert(htmls[5])]
    assert expected[2] == "x\n\n\u3000"
    for share in (False, True):
        with _fast.BatchConverter(digests=True, share=share, detect=True) as c:
            c.submit(htmls)
            got = c.collect()
            assert got == expected
            if not share:  # the thread's own: what it hashed, and what it handed back
                assert c.last_fallbacks == 3
                if c.last_digests is not None:
                    assert [d is None for d in c.last_digests] == [False] + [True] * 5
