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


@pytest.mark.parametrize("output_format", ["messages", "text"])
def test_an_exchange_the_count_template_refuses_is_rejected_and_the_others_kept(
    tmp_path, output_format
):
    # chatml cannot write tool calls: the exchange with one goes to the rejects as
    # template_error, whatever the output format; the exchanges around it are written.
    msgs = [{"role": "user", "content": f"Question {i}: what is {i} + {i}?"} for i in range(3)]
    answers = [{"role": "assistant", "content": f"It is {2 * i}."} for i in range(3)]
    answers[1] = {"role": "assistant", "content": "",
                  "tool_calls": [{"type": "function",
                                  "function": {"name": "add", "arguments": "{}"}}]}
    turns = [m for pair in zip(msgs, answers, strict=True) for m in pair]
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "t", "messages": turns}) + "\n")
    out, rejects = tmp_path / "o.jsonl", tmp_path / "r.jsonl"
    options = (
        {"writer_options": {"template": "chatml"}}
        if output_format == "text"
        else {"count_template": "chatml"}
    )
    result = convert(src, out, rejects=rejects, input_format="messages",
                     output_format=output_format, tokenizer=str(EXAMPLES / "tokenizer.json"),
                     max_tokens=1000, workers=1, **options)
    assert result.stats.segments == 2 and result.stats.accounted
    (rejected,) = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert (rejected["reason"], rejected["scope"]) == ("template_error", "turns")
    assert [t["content"] for t in rejected["turns"]] == ["Question 1: what is 1 + 1?", ""]
    assert rejected["detail"].startswith("chat template 'chatml': chatml has no way to write")


def test_count_template_with_the_text_writer_is_refused(tmp_path):
    from convkit import ConfigError

    src = tmp_path / "in.jsonl"
    src.write_text("")
    with pytest.raises(ConfigError) as e:
        convert(src, tmp_path / "o.jsonl", input_format="messages", output_format="text",
                tokenizer=str(EXAMPLES / "tokenizer.json"), max_tokens=100,
                count_template="chatml")
    assert str(e.value) == (
        "count_template (--count-template) is for other output formats: the text writer "
        "counts through its own template (--template)"
    )


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


DEFAULT_SYSTEM = (
    "{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] %}"
    "{% set rest = messages[1:] %}{% else %}{% set sys = '" + "Be helpful and safe. " * 30 + "' %}"
    "{% set rest = messages %}{% endif %}<<SYS>>{{ sys }}<</SYS>>\n"
    "{% for m in rest %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
)


def _exchange(cid, system=None):
    msgs = [{"role": "system", "content": system}] if system else []
    msgs += [{"role": "user", "content": "Two plus two, please?"},
             {"role": "assistant", "content": "Four, of course."}]
    return json.dumps({"id": cid, "messages": msgs})


def test_a_default_system_prompt_that_fills_the_limit_rejects_only_conversations_using_it(
    tmp_path,
):
    # Conversations without a system prompt get the template's long default one, which alone
    # is over the limit: they are oversize exchanges, the others are kept; not an error.
    template = tmp_path / "defsys.jinja"
    template.write_text(DEFAULT_SYSTEM)
    src = tmp_path / "in.jsonl"
    src.write_text(_exchange("own", "Be brief.") + "\n" + _exchange("default") + "\n")
    out, rejects = tmp_path / "o.jsonl", tmp_path / "r.jsonl"
    result = convert(src, out, rejects=rejects, input_format="messages", output_format="text",
                     writer_options={"template": str(template)},
                     tokenizer=str(EXAMPLES / "tokenizer.json"), max_tokens=120, workers=1)
    (kept,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert (kept["id"], kept["text"]) == (
        "own_0", "<<SYS>>Be brief.<</SYS>>\n<user>Two plus two, please?\n<assistant>Four, of course.\n"
    )
    (rejected,) = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert (rejected["reason"], rejected["id"]) == ("oversize_exchange", "default")
    assert result.stats.accounted


def test_a_limit_the_templates_fixed_parts_fill_is_refused_before_any_record(tmp_path):
    from convkit.errors import ConfigError

    src = tmp_path / "in.jsonl"
    src.write_text(_exchange("a") + "\n")
    # A run that works first: a worker that fails to build must not reuse this one's.
    ok = convert(src, tmp_path / "ok.jsonl", input_format="messages", output_format="text",
                 tokenizer=str(EXAMPLES / "tokenizer.json"), max_tokens=120, workers=1)
    assert ok.stats.conversations_out == 1
    with pytest.raises(
        ConfigError,
        match=r"^max_tokens 10 leaves no room for any exchange: chat template 'chatml' adds "
        r"\d+ tokens to the smallest one$",
    ):
        convert(src, tmp_path / "o.jsonl", input_format="messages", output_format="text",
                tokenizer=str(EXAMPLES / "tokenizer.json"), max_tokens=10, workers=1)
    assert not (tmp_path / "o.jsonl").exists()
    # Before any record: an empty input is refused too, with one process or two.
    src.write_text("")
    for workers in (1, 2):
        with pytest.raises(ConfigError, match="^max_tokens 10 leaves no room"):
            convert(src, tmp_path / "o.jsonl", input_format="messages", output_format="text",
                    tokenizer=str(EXAMPLES / "tokenizer.json"), max_tokens=10,
                    workers=workers)


def test_a_template_that_requires_a_system_message_still_splits_exactly(tmp_path):
    template = tmp_path / "needsys.jinja"
    template.write_text(
        "{% if messages[0]['role'] != 'system' %}{{ raise_exception('a system message is "
        "required') }}{% endif %}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}</s>"
        "{% endfor %}"
    )
    counter = TokenCounter(str(EXAMPLES / "tokenizer.json"))
    budget = RenderedBudget(load_template(str(template)), counter)
    c = dialogue(12)
    result = split_rendered(c, counter.count([t.content for t in c.turns]), budget,
                            max_tokens=300)
    rendered = [budget.template.render_conversation(s) for s in result.segments]
    exact = [n + 1 for n in counter.count(rendered)]  # the tokenizer's BOS
    assert len(result.segments) > 1 and exact == result.segment_tokens
    assert max(exact) <= 300 and result.dropped == []


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


class ScriptedBudget:
    """A budget whose exact count is the estimate (a token per word, 2 a turn, 3 a segment)
    plus ``penalty(k)`` for a segment of k exchanges: what a template's merges and numbering
    add, which the per-turn estimate cannot see."""

    def __init__(self, penalty):
        self.penalty = penalty
        self.calls = []

    def measure(self):
        from types import SimpleNamespace

        return SimpleNamespace(segment=3, turn={}, turn_overhead=2)

    def exact(self, segments):
        out = []
        for s in segments:
            self.calls.append([t.content for t in s.turns])
            exchanges = sum(t.role == "user" for t in s.turns)
            words = sum(len(t.content.split()) + 2 for t in s.turns)
            out.append(3 + words + self.penalty(exchanges))
        return out


def words(n, tag):
    return " ".join([tag] * n)


def test_an_exchange_that_fits_is_not_dropped_for_the_reserve_of_another_segment():
    # The first two exchanges together count 15 more than estimated (54 > 50): the reserve
    # grows (4, 8, 16) until they part. With that reserve the third exchange's estimate is 62,
    # but it counts 46 exactly: it fits, and is written, unflagged.
    budget = ScriptedBudget(lambda k: 15 * (k - 1))
    c = conv(("user", words(4, "a")), ("assistant", words(10, "b")),
             ("user", words(4, "c")), ("assistant", words(10, "d")),
             ("user", words(10, "e")), ("assistant", words(29, "f")))
    counts = [len(t.content.split()) for t in c.turns]
    for oversize in ("drop", "keep"):
        result = split_rendered(c, counts, budget, max_tokens=50, oversize=oversize)
        assert result.spans == [(0, 2), (2, 4), (4, 6)]
        assert result.segment_tokens == [21, 21, 46]
        assert [s.id for s in result.segments] == ["c_0", "c_1", "c_2"]
        assert not any(s.meta.get("oversize") for s in result.segments)
        assert result.dropped == []


def test_segments_the_reserve_cannot_fix_are_packed_exactly():
    # Each exchange added to a segment costs 40 more than estimated: the reserve outgrows the
    # limit before the estimate is right. The last step packs exchange by exchange, counting
    # each candidate: two fit together (3 + 4 + 2 x 12 + 40 = 71 <= 80), three do not (123).
    budget = ScriptedBudget(lambda k: 40 * (k - 1))
    turns = []
    for i in range(5):
        turns += [("user", words(3, f"q{i}")), ("assistant", words(5, f"a{i}"))]
    c = conv(("system", "Be brief."), *turns)
    counts = [len(t.content.split()) for t in c.turns]
    result = split_rendered(c, counts, budget, max_tokens=80)
    assert result.spans == [(1, 5), (5, 9), (9, 11)]
    assert result.segment_tokens == [71, 71, 19]
    assert [s.turns[0].content for s in result.segments] == ["Be brief."] * 3
    assert [s.id for s in result.segments] == ["c_0", "c_1", "c_2"]
    assert result.dropped == []


def test_an_exchange_over_the_limit_alone_is_oversize_by_its_exact_count():
    budget = ScriptedBudget(lambda k: 0)
    c = conv(("system", "Be brief."), ("user", words(3, "q")), ("assistant", words(60, "a")))
    counts = [len(t.content.split()) for t in c.turns]
    dropped = split_rendered(c, counts, budget, max_tokens=50)
    assert dropped.segments == []
    assert [(d.start, d.end, d.reason, d.tokens) for d in dropped.dropped] == [
        (1, 3, "oversize_exchange", 74), (0, 1, "unused_system_prompt", 4)
    ]
    kept = split_rendered(c, counts, budget, max_tokens=50, oversize="keep")
    assert kept.segment_tokens == [74] and kept.segments[0].meta["oversize"] is True
    assert kept.dropped == []


def test_exact_repacking_keeps_a_request_to_go_on_with_what_it_continues():
    # Each exchange added to a segment costs 40 more than estimated: the rounds part every
    # exchange, the request too. x and a fit together (65), all three do not (117). The request
    # continues a: the cut goes before a, not before the request (x | a + request: 13, 67).
    budget = ScriptedBudget(lambda k: 40 * (k - 1))
    c = conv(("user", "x"), ("assistant", words(5, "y")),
             ("user", words(3, "a")), ("assistant", words(5, "b")),
             ("user", "continue"), ("assistant", words(7, "z")))
    counts = [len(t.content.split()) for t in c.turns]
    for continuations in ("drop", "keep"):
        result = split_rendered(c, counts, budget, max_tokens=80, continuations=continuations)
        assert result.spans == [(0, 2), (2, 6)]
        assert result.segment_tokens == [13, 67]
        assert result.dropped == []


def test_a_request_to_go_on_that_fits_nowhere_is_dropped_or_kept_alone():
    budget = ScriptedBudget(lambda k: 70 * (k - 1))  # no two exchanges fit 80 together
    c = conv(("user", "x"), ("assistant", words(5, "y")),
             ("user", words(3, "a")), ("assistant", words(5, "b")),
             ("user", "continue"), ("assistant", words(7, "z")))
    counts = [len(t.content.split()) for t in c.turns]
    dropped = split_rendered(c, counts, budget, max_tokens=80)
    assert dropped.spans == [(0, 2), (2, 4)]
    assert [(d.start, d.end, d.reason, d.tokens) for d in dropped.dropped] == [
        (4, 6, "no_context", 12)
    ]
    kept = split_rendered(c, counts, budget, max_tokens=80, continuations="keep")
    assert kept.spans == [(0, 2), (2, 4), (4, 6)] and kept.dropped == []
    assert [s.id for s in kept.segments] == ["c_0", "c_1", "c_2"]


def test_a_request_to_go_on_after_a_dropped_first_exchange_is_not_the_conversations_start():
    # The first exchange has no assistant reply (dropped): the request that follows continues
    # nothing a segment holds. Both splitters reject it.
    from convkit.split import split_conversation

    budget = ScriptedBudget(lambda k: 0)
    c = conv(("user", "Run the tool please"), ("tool", "result"),
             ("user", "continue"), ("assistant", words(5, "z")))
    counts = [len(t.content.split()) for t in c.turns]
    rendered = split_rendered(c, counts, budget, max_tokens=100)
    plain = split_conversation(c, counts, max_tokens=100, turn_overhead=2, segment_overhead=3)
    for result in (rendered, plain):
        assert result.segments == []
        assert [(d.start, d.end, d.reason) for d in result.dropped] == [
            (0, 2, "no_assistant_reply"), (2, 4, "no_context")
        ]


def test_count_template_variant_picks_a_named_template_of_a_tokenizer_config(tmp_path, capsys):
    from convkit import ConfigError
    from convkit.cli import main

    config = tmp_path / "tokenizer_config.json"
    rag = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
    config.write_text(json.dumps({
        "chat_template": [
            {"name": "tool_use", "template": "{% for m in messages %}{{ m.content }}{% endfor %}"},
            {"name": "rag", "template": rag},
        ],
        "bos_token": "<s>",
        "eos_token": "</s>",
    }))
    msgs = [{"role": t.role, "content": t.content} for t in dialogue(8).turns]
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "d", "messages": msgs}) + "\n")
    tok = str(EXAMPLES / "tokenizer.json")
    out = tmp_path / "out.jsonl"
    args = ["convert", str(src), "-o", str(out), "--from", "messages", "--tokenizer", tok,
            "--max-tokens", "200", "--count-template", str(config)]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "convkit: error: 'tokenizer_config.json' has no chat template named 'default'; it has: "
        "tool_use, rag (pick one with --template-variant for --to text, --count-template-variant "
        "for --count-template)\n"
    )
    assert main([*args, "--count-template-variant", "rag", "-q"]) == 0
    segments = [json.loads(line)["messages"] for line in out.read_text().splitlines()]
    template = load_template(config, variant="rag")
    counts = TokenCounter(tok).count_trained([template.render(s) for s in segments])
    assert len(segments) > 1 and max(counts) <= 200
    with pytest.raises(ConfigError) as e:
        convert(src, out, input_format="messages", count_template_variant="rag")
    assert str(e.value) == (
        "count_template_variant (--count-template-variant) needs count_template "
        "(--count-template TEMPLATE)"
    )
    with pytest.raises(ConfigError) as e:
        convert(src, out, input_format="messages", count_template_variant="rag",
                output_format="text", writer_options={"template": str(config)})
    assert str(e.value) == (
        "count_template_variant (--count-template-variant) is for count_template; the text "
        "writer picks a variant of its template with --template-variant"
    )
