"""One-process runs convert HTML on a thread without the GIL (process.run_converting_aside):
the same bytes as converting each conversation in turn, the same rejects and counts."""
from __future__ import annotations

import json

import pytest
from test_pipeline import PAGE, TOKENIZER, sg, write_json

from convkit import convert, pipeline, process
from convkit.markdown import fast

pytestmark = pytest.mark.skipif(not fast.AVAILABLE, reason="the compiled HTML engine is not built")


def records() -> list[dict]:
    gpt = [
        "<p>Plain <b>bold</b> and <code>code</code>.</p>",
        '<p>See <a href="https://example.org/a_b" title="D">the docs</a>.</p>',  # the GIL
        # A table (converted on the thread) and an image (which needs the GIL).
        '<table><tr><th>k</th></tr><tr><td>v</td></tr></table><p><img src="i.png" alt="x"></p>',
        # Soft breaks before list markers, in Arabic-Indic digits: the patterns, and the GIL.
        "<p>Steps:\n\u0661. one\n\u0662. two</p>",
        '<pre><code class="language-python">print(1)\n</code></pre><ol><li>a</li></ol>',
        "<blockquote>q<br>r</blockquote><h2>t</h2>",
    ]
    out = []
    for k in range(12):
        html = PAGE.format(gpt[k % len(gpt)])
        out.append(sg(f"c{k}", ("human", f"2 / 2Question {k}?"), ("gpt", html)))
    out.append(sg("same", ("human", "Question 0?"), ("gpt", PAGE.format(gpt[0]))))  # dup
    out.append(sg("empty", ("human", "Q?"), ("gpt", PAGE.format("<p> </p>"))))
    out.append({"id": "broken", "conversations": 7})
    # Not page HTML (kept as written), and page HTML whose end only Python's rule can tell
    # (U+3000 is white space to it): the thread leaves both decisions right.
    out.append(sg("md", ("human", "Is this HTML?"), ("gpt", "Already **markdown**: <div>x</div>")))
    out.append(sg("wide", ("human", "And this?"), ("gpt", PAGE.format("<p>a wide end</p>") + "\u3000")))
    return out


def _run(tmp_path, name: str, **kw) -> tuple[bytes, bytes, dict]:
    src = write_json(tmp_path, records())
    out, rej, st = (tmp_path / f"{name}.{x}" for x in ("jsonl", "rej.jsonl", "json"))
    convert(src, out, rejects=rej, stats=st, workers=1, batch_size=4, **kw)
    stats = json.loads(st.read_text())
    del stats["seconds"], stats["options"]
    return out.read_bytes(), rej.read_bytes(), stats


@pytest.mark.parametrize("max_tokens", [None, 64])
def test_the_thread_gives_what_converting_in_turn_gives(tmp_path, monkeypatch, max_tokens) -> None:
    asides = []
    stage = process.Worker.stage

    def spy(self, batch, aside=False):
        asides.append(aside)
        return stage(self, batch, aside)

    monkeypatch.setattr(process.Worker, "stage", spy)
    split = {"tokenizer": TOKENIZER, "max_tokens": max_tokens} if max_tokens else {}
    threaded = _run(tmp_path, "threaded", **split)
    assert asides == [True] * 5
    monkeypatch.setattr(pipeline, "converts_aside", lambda options: False)
    in_turn = _run(tmp_path, "in_turn", **split)
    assert asides == [True] * 5 + [False] * 5
    assert threaded == in_turn
    out, rej, stats = threaded
    assert stats["html_turns_converted"] == 15
    assert (stats["conversations_in"], stats["conversations_out"]) == (17, 14)
    kept = [json.loads(line) for line in out.splitlines()]
    assert [r["conversations"][1]["value"] for r in kept[:6]] == [
        "Plain **bold** and `code`.",
        'See [the docs](https://example.org/a_b "D").',
        "| k |\n| --- |\n| v |\n\n![x](i.png)",
        "Steps: \u0661. one \u0662. two",
        "```python\nprint(1)\n```\n\n1. a",
        "> q\\\n> r\n\n## t",
    ]
    assert [r["conversations"][0]["value"] for r in kept[:2]] == ["Question 0?", "Question 1?"]
    assert [r["conversations"][1]["value"] for r in kept[-2:]] == [
        "Already **markdown**: <div>x</div>",
        "a wide end\n\n\u3000",
    ]
    reasons = [(r["id"], r["reason"]) for r in map(json.loads, rej.splitlines())]
    assert reasons == [
        ("same", "duplicate_content"), ("empty", "too_few_turns"), ("broken", "invalid_record")
    ]


def test_a_message_that_fails_rejects_only_its_conversation(tmp_path, monkeypatch) -> None:
    from convkit.markdown import _fast

    def failing(html: str) -> str:
        raise ValueError("no converter for this one")

    # Only messages that need the GIL are converted by _fast.convert on the thread path (with
    # the thread alone: a main thread that shares the list converts others too).
    monkeypatch.setattr(_fast, "convert", failing)
    alone = _fast.BatchConverter

    def unshared(**kwargs):
        return alone(share=False, **kwargs)

    monkeypatch.setattr(_fast, "BatchConverter", unshared)
    out, rej, stats = _run(tmp_path, "failing")
    reasons = [(r["id"], r["reason"], r.get("detail")) for r in map(json.loads, rej.splitlines())]
    failed = [(i, d) for i, reason, d in reasons if reason == "processing_error"]
    assert failed == [
        (f"c{k}", "ValueError: no converter for this one") for k in (1, 2, 3, 7, 8, 9)
    ] + [("wide", "ValueError: no converter for this one")]  # decided by the rule, then failed
    assert [json.loads(line)["id"] for line in out.splitlines()] == [
        f"c{k}" for k in (0, 4, 5, 6, 10, 11)
    ] + ["md"]
    assert stats["conversations_out"] == 7


@pytest.mark.parametrize("aside", [True, False])
def test_an_error_listing_the_html_turns_rejects_only_its_conversation(
    tmp_path, monkeypatch, aside
) -> None:
    strip = process.strip_regeneration_counter

    def failing(text: str) -> str:
        if text in ("2 / 2Question 2?", "2 / 2Question 8?"):
            raise RuntimeError("cannot tell")
        return strip(text)

    monkeypatch.setattr(process, "strip_regeneration_counter", failing)
    if not aside:
        monkeypatch.setattr(pipeline, "converts_aside", lambda options: False)
    out, rej, stats = _run(tmp_path, f"listing{aside}")
    reasons = [(r["id"], r["reason"], r.get("detail")) for r in map(json.loads, rej.splitlines())]
    assert [(i, d) for i, reason, d in reasons if reason == "processing_error"] == [
        ("c2", "RuntimeError: cannot tell"), ("c8", "RuntimeError: cannot tell")
    ]
    assert out.count(b"\n") == stats["conversations_out"] == 12


def _converter_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name == "convkit-html"]


def test_the_thread_ends_with_the_run_even_when_it_fails(tmp_path, monkeypatch) -> None:
    _run(tmp_path, "ok")
    assert _converter_threads() == []
    finish = process.Worker.finish
    calls = []

    def failing(self, prepared):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return finish(self, prepared)

    monkeypatch.setattr(process.Worker, "finish", failing)
    with pytest.raises(OSError, match="^disk full$"):
        _run(tmp_path, "failing")
    assert _converter_threads() == []
    assert not (tmp_path / "failing.jsonl").exists()
