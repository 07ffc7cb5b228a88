"""Token costs of chat templates: measured overheads and exact counts of rendered text."""

from __future__ import annotations

import pytest

from convkit.formats import get_format
from convkit.io import read_records
from convkit.templates import (
    ChatTemplate,
    TemplateOverheads,
    load_template,
    rendered_token_counts,
    template_overheads,
)

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def oasst(shared_data):
    path = shared_data / "formats" / "oasst1" / "en_100_tree.jsonl"
    return list(get_format("oasst").read_stream(read_records(path)))[:150]


def load(shared_data, name):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(shared_data / "tokenizers" / name / "tokenizer.json"))


def content_counts(tok, conv):
    return [
        len(e) for e in tok.encode_batch([t.content for t in conv.turns], add_special_tokens=False)
    ]


def test_overheads_of_chatml_under_llama(shared_data):
    o = template_overheads(load_template("chatml"), load(shared_data, "llama"))
    assert isinstance(o, TemplateOverheads)
    assert set(o.turn) == {"user", "assistant", "system", "tool"}
    assert o.turn_overhead == max(o.turn["user"], o.turn["assistant"], o.turn["tool"])
    assert o.estimate(["user"], [5]) == o.segment + o.turn["user"] + 5


def test_roles_a_template_refuses_are_left_out(shared_data):
    o = template_overheads(load_template("llama-2"), load(shared_data, "llama"))
    assert "tool" not in o.turn and "system" in o.turn


@pytest.mark.parametrize(
    "template,tokenizer", [("llama-2", "llama"), ("vicuna", "llama"), ("vicuna", "t5-small")]
)
def test_estimate_is_exact_where_boundaries_do_not_merge(shared_data, oasst, template, tokenizer):
    t, tok = load_template(template), load(shared_data, tokenizer)
    o = template_overheads(t, tok)
    exact = rendered_token_counts(t, tok, oasst)
    assert [o.estimate(c.roles(), content_counts(tok, c)) for c in oasst] == exact


@pytest.mark.parametrize("template", ["chatml", "llama-3", "alpaca"])
def test_estimate_is_close_elsewhere(shared_data, oasst, template):
    # Merges across a template/content boundary make a few tokens of difference: the splitter
    # checks its segments with rendered_token_counts.
    t, tok = load_template(template), load(shared_data, "llama")
    o = template_overheads(t, tok)
    exact = rendered_token_counts(t, tok, oasst)
    errors = [
        e - o.estimate(c.roles(), content_counts(tok, c)) for c, e in zip(oasst, exact, strict=True)
    ]
    assert max(abs(x) for x in errors) <= 2 * max(len(c.turns) for c in oasst)


@pytest.mark.parametrize(
    ("template", "with_special"),
    [("vicuna", True), ("alpaca", True), ("chatml", True), ("llama-2", False),
     # Llama 3's "<|begin_of_text|>" is no special token of Llama 2's tokenizer: its BOS is added.
     ("llama-3", True)],
)
def test_rendered_counts_are_what_a_trainer_tokenises(shared_data, oasst, template, with_special):
    # Vicuna's, Alpaca's and ChatML's text has no BOS: FastChat and Stanford Alpaca tokenise it
    # with llama's, which a segment must leave room for. Llama 2 writes its own: no second one.
    t, tok = load_template(template), load(shared_data, "llama")
    texts = [t.render_conversation(c) for c in oasst[:10]]
    assert rendered_token_counts(t, tok, oasst[:10]) == [
        len(tok.encode(x, add_special_tokens=with_special)) for x in texts
    ]


def test_special_edges_of_real_tokenizers(shared_data):
    from convkit.tokens import TokenCounter

    def edges(name):
        return TokenCounter(load(shared_data, name)).special_edges

    assert edges("llama") == ((1,), ())
    assert edges("t5-small") == ((), (1,))
    assert edges("gpt2") == ((), ())


def test_an_added_eos_is_counted_unless_the_text_ends_with_it(shared_data, oasst):
    # t5 appends "</s>": Vicuna's text ends with it already, ChatML's does not.
    from convkit.tokens import TokenCounter

    tok = load(shared_data, "t5-small")
    counter = TokenCounter(tok)
    for name, added in (("vicuna", 0), ("llama-2", 0), ("chatml", 1)):
        t = load_template(name)
        texts = [t.render_conversation(c) for c in oasst[:5]]
        plain = [len(tok.encode(x, add_special_tokens=False)) for x in texts]
        assert rendered_token_counts(t, counter, oasst[:5]) == [n + added for n in plain], name


def test_bos_and_eos_both_added(shared_data, oasst):
    from tokenizers.processors import TemplateProcessing

    from convkit.tokens import TokenCounter

    tok = load(shared_data, "llama")
    tok.post_processor = TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)]
    )
    counter = TokenCounter(tok)
    assert counter.special_edges == ((1,), (2,))
    conv = oasst[0]
    for name, added in (("llama-2", 0), ("vicuna", 1), ("chatml", 2)):
        t = load_template(name)
        text = t.render_conversation(conv)
        assert rendered_token_counts(t, counter, [conv]) == [
            len(tok.encode(text, add_special_tokens=False)) + added
        ], name
    # an empty text gets both
    assert counter.count_trained([""]) == [2]


def test_a_tokenizer_that_adds_nothing_adds_nothing(shared_data, oasst):
    t, tok = load_template("vicuna"), load(shared_data, "gpt2")
    tok.no_truncation()
    assert tok.num_special_tokens_to_add(False) == 0
    texts = [t.render_conversation(c) for c in oasst[:5]]
    assert rendered_token_counts(t, tok, oasst[:5]) == [
        len(tok.encode(x, add_special_tokens=False)) for x in texts
    ]


def test_vicuna_segment_overhead_counts_the_bos(shared_data):
    # The segment cost of Vicuna under llama: its default system prompt, and the BOS.
    tok = load(shared_data, "llama")
    o = template_overheads(load_template("vicuna"), tok)
    u = {"role": "user", "content": "a"}
    a = {"role": "assistant", "content": "a"}
    text = load_template("vicuna").render([u, a])
    assert o.estimate(["user", "assistant"], [1, 1]) == len(tok.encode(text))


def test_rendered_token_counts_are_the_counts_of_the_rendered_text(shared_data, oasst):
    t, tok = load_template("chatml"), load(shared_data, "gpt2")
    texts = [t.render_conversation(c) for c in oasst[:10]]
    tok.no_truncation()
    assert rendered_token_counts(t, tok, oasst[:10]) == [
        len(tok.encode(x, add_special_tokens=False)) for x in texts
    ]


def test_a_tokenizer_with_truncation_is_not_capped(shared_data):
    tok = load(shared_data, "gpt2")  # this tokenizer.json carries truncation at 50 tokens
    assert tok.truncation is not None
    o = template_overheads(load_template("chatml"), tok)
    assert o.turn["assistant"] > 5  # an uncapped count (capped, a whole turn cost 0 or less)


def test_accepts_a_token_counter(shared_data):
    from convkit.tokens import TokenCounter

    counter = TokenCounter(str(shared_data / "tokenizers" / "llama" / "tokenizer.json"))
    assert template_overheads(load_template("llama-2"), counter) == template_overheads(
        load_template("llama-2"), load(shared_data, "llama")
    )


def test_a_template_that_refuses_every_probe_gets_no_overheads(shared_data):
    # Nothing to estimate with: the exact count of every segment keeps the split in bounds.
    t = ChatTemplate("{{ raise_exception('no') }}", name="no")
    assert template_overheads(t, load(shared_data, "llama")) == TemplateOverheads({}, 0, 0)


NEEDS_SYSTEM = (
    "{% if messages[0]['role'] != 'system' %}{{ raise_exception('a system message is required') }}"
    "{% endif %}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}</s>{% endfor %}"
)


def test_a_template_that_requires_a_system_message_is_measured_with_one(shared_data):
    tok = load(shared_data, "llama")
    t = ChatTemplate(NEEDS_SYSTEM, name="needsys.jinja")
    o = template_overheads(t, tok)
    # The system header is in the segment's cost (every segment carries the prompt).
    assert o == TemplateOverheads(
        {"user": 6, "assistant": 7, "system": 0, "tool": 6}, segment=7, turn_overhead=7
    )
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Two plus two?"},
        {"role": "assistant", "content": "Four."},
    ]
    text = t.render(msgs)
    counts = [len(tok.encode(m["content"], add_special_tokens=False)) for m in msgs]
    # Close: a word right after "|>" is tokenised without the "▁" it has alone.
    assert len(tok.encode(text)) == 30
    assert o.estimate([m["role"] for m in msgs], counts) == 29
