"""Splitting to a budget of rendered tokens: no segment is over the limit once templated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convkit import convert
from convkit.budget import RenderedBudget, split_rendered
from convkit.model import Conversation, Turn
from convkit.templates import load_template
from convkit.tokens import TokenCounter

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TEMPLATES = ("chatml", "llama-2", "llama-3", "vicuna-v1.1", "alpaca")


def conv(*turns, cid="c"):
    return Conversation(cid, [Turn(r, t) for r, t in turns])


def dialogue(n, cid="d"):
    turns = [("system", "You answer in full sentences.")]
    for i in range(n):
        turns += [
            ("user", f"Question {i}: why is the sky blue at noon?"),
            ("assistant", f"Answer {i}: sunlight scatters off air molecules, blue the most. " * 3),
        ]
    return conv(*turns, cid=cid)


#: Whether a template's text starts with the example tokenizer's BOS ("<s>", which it adds
#: as llama's does): the others get it from the tokenizer, and a trainer's count includes it.
#: Llama 3's "<|begin_of_text|>" is no special token of this tokenizer.
WRITES_BOS = {"chatml": False, "llama-2": True, "llama-3": False, "vicuna-v1.1": False,
              "alpaca": False}


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_segment_fits_once_rendered(name):
    counter = TokenCounter(str(EXAMPLES / "tokenizer.json"))
    assert counter.special_tokens == 1
    budget = RenderedBudget(load_template(name), counter)
    c = dialogue(12)
    counts = counter.count([t.content for t in c.turns])
    result = split_rendered(c, counts, budget, max_tokens=300)
    rendered = [budget.template.render_conversation(s) for s in result.segments]
    bos = 0 if WRITES_BOS[name] else 1
    exact = [n + bos for n in counter.count(rendered)]
    assert len(result.segments) > 1
    assert exact == result.segment_tokens
    assert max(exact) <= 300
    assert [s.id for s in result.segments] == [f"d_{k}" for k in range(len(result.segments))]
    # every exchange is in exactly one segment (nothing is dropped at this budget)
    assert sum(len(s.turns) - 1 for s in result.segments) == 24 and result.dropped == []


def test_an_exchange_over_the_rendered_limit_is_dropped_or_flagged():
    counter = TokenCounter(str(EXAMPLES / "tokenizer.json"))
    budget = RenderedBudget(load_template("chatml"), counter)
    c = conv(
        ("user", "Short one please"),
        ("assistant", "Fine."),
        ("user", "Long"),
        ("assistant", "word " * 300),
    )
    counts = counter.count([t.content for t in c.turns])
    dropped = split_rendered(c, counts, budget, max_tokens=100)
    assert [(d.start, d.end, d.reason) for d in dropped.dropped] == [(2, 4, "oversize_exchange")]
    assert [s.id for s in dropped.segments] == ["c_0"]
    kept = split_rendered(c, counts, budget, max_tokens=100, oversize="keep")
    assert [s.meta.get("oversize", False) for s in kept.segments] == [False, True]


@pytest.mark.parametrize("name", TEMPLATES)
def test_real_data_never_exceeds_the_limit(shared_data, tmp_path, name):
    tok = str(shared_data / "tokenizers" / "llama" / "tokenizer.json")
    src = shared_data / "sharegpt_cleaned" / "ShareGPT_V3_unfiltered_cleaned_split.sample400.json"
    out = tmp_path / "out.jsonl"
    convert(
        src,
        out,
        output_format="text",
        writer_options={"template": name},
        tokenizer=tok,
        max_tokens=512,
        workers=1,
    )
    counter = TokenCounter(tok)
    texts = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    counts = counter.count(texts)
    assert len(texts) > 300
    assert max(counts) <= 512


def test_count_template_with_another_output_format(tmp_path):
    src = tmp_path / "in.jsonl"
    c = dialogue(8)
    src.write_text(
        json.dumps(
            {"id": "d", "messages": [{"role": t.role, "content": t.content} for t in c.turns]}
        )
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    tok = str(EXAMPLES / "tokenizer.json")
    convert(
        src,
        out,
        input_format="messages",
        output_format="messages",
        tokenizer=tok,
        max_tokens=300,
        count_template="llama-3",
    )
    segments = [json.loads(line) for line in out.read_text().splitlines()]
    template, counter = load_template("llama-3"), TokenCounter(tok)
    rendered = [template.render(s["messages"]) for s in segments]
    assert len(segments) > 1 and max(counter.count(rendered)) <= 300


def test_count_template_needs_max_tokens(tmp_path):
    from convkit import ConfigError

    src = tmp_path / "in.jsonl"
    src.write_text("")
    with pytest.raises(ConfigError) as e:
        convert(src, tmp_path / "o.jsonl", count_template="chatml")
    assert str(e.value) == "count_template needs max_tokens (--max-tokens N)"


@pytest.mark.parametrize(
    "options",
    [
        {"count_template": "chatml", "turn_overhead": 5},
        {"count_template": "chatml", "segment_overhead": 0},
        {"output_format": "text", "turn_overhead": 1},
    ],
)
def test_overheads_are_refused_when_counting_through_a_template(tmp_path, options):
    from convkit import ConfigError

    src = tmp_path / "in.jsonl"
    src.write_text("")
    tok = Path(__file__).resolve().parent.parent / "examples" / "tokenizer.json"
    with pytest.raises(ConfigError) as e:
        convert(src, tmp_path / "o.jsonl", input_format="messages", tokenizer=str(tok),
                max_tokens=100, **options)
    assert str(e.value) == (
        "turn_overhead (--turn-overhead) and segment_overhead (--segment-overhead) do not apply "
        "when segments are counted through a chat template (count_template, or the text "
        "writer): the rendered segment is counted whole"
    )
    assert not (tmp_path / "o.jsonl").exists()


def test_a_conversation_whose_template_text_fills_the_budget_is_rejected_alone(tmp_path):
    # The template writes the conversation's tool list into every segment; one record's list
    # alone is over the limit. That record is an oversize exchange; the run goes on.
    template = tmp_path / "tools.jinja"
    template.write_text(
        "{% if tools %}{{ tools | tojson }}\n{% endif %}"
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
    )
    tools = [{"type": "function", "function": {"name": f"tool_{i}", "description": "x " * 40}}
             for i in range(12)]
    small = {"id": "small", "messages": [{"role": "user", "content": "Hello there, who are you?"},
                                         {"role": "assistant", "content": "A helpful assistant."}]}
    big = {"id": "big", "tools": tools, "messages": small["messages"]}
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(big) + "\n" + json.dumps(small) + "\n")
    tok = Path(__file__).resolve().parent.parent / "examples" / "tokenizer.json"
    out, rejects = tmp_path / "o.txt", tmp_path / "r.jsonl"
    result = convert(src, out, rejects=rejects, input_format="messages", output_format="text",
                     writer_options={"template": str(template)}, tokenizer=str(tok),
                     max_tokens=120, workers=1)
    assert result.stats.conversations_out == 1
    (kept,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert (kept["id"], kept["text"]) == (
        "small_0", "<user>Hello there, who are you?\n<assistant>A helpful assistant.\n"
    )
    (rejected,) = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert (rejected["reason"], rejected["id"]) == ("oversize_exchange", "big")


def test_a_template_whose_text_grows_with_position_is_repacked_not_flagged(tmp_path):
    # Numbered rounds whose padding grows with the square of the turn's position: the first
    # estimate is furthest off for the longest segments. The re-packing must end with every
    # segment under the limit, not with multi-exchange segments called oversize.
    from convkit import TokenCounter
    from convkit.templates import load_template

    template = tmp_path / "grow.jinja"
    template.write_text(
        "{% for m in messages %}[Round {{ loop.index }}]"
        "{% for i in range(loop.index0 * loop.index0) %} pad{% endfor %}\n"
        "{{ m.role }}: {{ m.content }}\n{% endfor %}"
    )
    msgs = []
    for i in range(12):
        msgs += [{"role": "user", "content": f"question {i} about things"},
                 {"role": "assistant", "content": f"answer {i} is short"}]
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "m", "messages": msgs}) + "\n")
    tok = Path(__file__).resolve().parent.parent / "examples" / "tokenizer.json"
    out, rej = tmp_path / "o.jsonl", tmp_path / "r.jsonl"
    for oversize in ("drop", "keep"):
        convert(src, out, rejects=rej, input_format="messages", output_format="text",
                writer_options={"template": str(template)}, tokenizer=str(tok), max_tokens=300,
                oversize=oversize)
        segments = [json.loads(x) for x in out.read_text().splitlines()]
        assert rej.read_text() == ""
        assert len(segments) > 1 and not any(s.get("oversize") for s in segments)
        counter = TokenCounter(str(tok))
        assert max(counter.count([s["text"] for s in segments])) <= 300
        assert sum(s["text"].count("user: ") for s in segments) == 12
    assert load_template(str(template)).name == "grow.jinja"
