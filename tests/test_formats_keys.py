"""Fields named like a layout's structure: the escaping rule is a bijection, and records with any
mix of such fields survive messages -> sharegpt -> messages."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from convkit.formats import get_format
from convkit.formats._keys import ESCAPE, escape, rekey, unescape
from convkit.model import Source

SRC = Source("k.jsonl", 0, 1)
BASES = ["from", "value", "role", "content", "content_parts", "messages", "conversations", "id",
         "x", "", "convkit"]
NAMES = frozenset(("from", "value", "content"))
OTHER = frozenset(("role", "content", "content_parts"))

keys = st.builds(lambda n, base: ESCAPE * n + base, st.integers(0, 3), st.sampled_from(BASES))


def test_examples():
    assert escape("from", NAMES) == "convkit:from"
    assert escape("convkit:from", NAMES) == "convkit:convkit:from"
    assert escape("convkit:x", NAMES) == "convkit:x"
    assert escape("name", NAMES) == "name"
    assert unescape("convkit:convkit:from", NAMES) == "convkit:from"
    assert unescape("convkit:x", NAMES) == "convkit:x"
    assert unescape("role", NAMES) == "role"


@settings(max_examples=300, deadline=None)
@given(st.sets(keys, max_size=12))
def test_escaping_is_a_bijection_that_never_writes_a_structural_name(fields):
    written = [escape(k, NAMES) for k in fields]
    assert len(set(written)) == len(fields)
    assert not set(written) & NAMES
    assert {unescape(w, NAMES) for w in written} == fields


@settings(max_examples=300, deadline=None)
@given(keys)
def test_rekey_is_unescape_then_escape(key):
    if key in NAMES:
        return  # structure, not a field
    assert rekey(key, NAMES, OTHER) == escape(unescape(key, NAMES), OTHER)


# Values the structure gives meaning to: null content, OpenAI role names, content parts (that
# spell a turn's text or not: "a", "" and the image's "").
values = st.sampled_from([
    None, 1, "developer", "function", "user", [], [{"type": "text", "text": "a"}],
    [{"type": "image_url", "image_url": {"url": "u"}}], [{"type": "text"}],
])
fields = st.dictionaries(keys.filter(lambda k: k not in ("role", "content")), values, max_size=6)
turn_fields = st.dictionaries(keys.filter(lambda k: k not in ("from", "value")), values, max_size=6)
messages = st.lists(
    st.tuples(st.sampled_from(["system", "user", "assistant", "tool", "developer", "function"]),
              st.text(max_size=3), fields),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(messages, st.dictionaries(keys.filter(lambda k: k not in ("id", "messages")),
                                 values, max_size=6))
def test_messages_sharegpt_messages_is_lossless_whatever_the_field_names(msgs, top):
    record = {"id": "r", "messages": [{"role": r, "content": c, **f} for r, c, f in msgs], **top}
    (conv,) = get_format("messages").read(record, SRC)
    mid = get_format("sharegpt").write(conv)
    (back,) = get_format("sharegpt").read(mid, SRC)
    assert get_format("messages").write(back) == record


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["human", "gpt", "system", "tool", "bing"]),
                          st.text(max_size=3), turn_fields), max_size=4))
def test_sharegpt_reads_back_what_it_writes(turns):
    record = {"id": "r", "conversations": [
        {**f, "from": s, "value": v} for s, v, f in turns]}
    sharegpt, messages = get_format("sharegpt"), get_format("messages")

    def through(fmt, rec):
        (conv,) = fmt.read(rec, SRC)
        return conv

    once = sharegpt.write(through(sharegpt, record))
    assert sharegpt.write(through(sharegpt, once)) == once
    # and through messages, the same turns and fields. Not when a turn's bare "content" (the
    # null of a turn that only calls tools) holds something else, or "content_parts" holds
    # something other than a list (see the test below), or the turn has both (a message's one
    # "content" holds either the null or the parts), or its own "convkit:content_parts" beside
    # them (then the bare ones are the metadata's, whatever their text: see the next test).
    if any(t.get("content", None) is not None or not isinstance(t.get("content_parts", []), list)
           or ("content_parts" in t and ("content" in t or "convkit:content_parts" in t))
           for t in once["conversations"]):
        return
    expected = {**once, "conversations": [
        # messages holds null content only for a turn without text
        {k: v for k, v in t.items() if not (k == "content" and t["value"])}
        for t in once["conversations"]]}
    assert sharegpt.write(through(messages, messages.write(through(sharegpt, once)))) == expected


def test_a_sharegpt_turns_own_content_field_is_kept_through_messages():
    record = {"id": "a", "conversations": [
        {"from": "human", "value": "hi", "content": "hello"},
        {"from": "gpt", "value": "yo", "content_parts": "n/a"},
    ]}
    sharegpt, messages = get_format("sharegpt"), get_format("messages")
    (conv,) = sharegpt.read(record, SRC)
    assert sharegpt.write(conv) == record  # as it was
    both = {"id": "b", "conversations": [
        {"from": "human", "value": "hi", "content": "A", "convkit:content": "B"}]}
    assert sharegpt.write(next(iter(sharegpt.read(both, SRC)))) == both
    two = {"id": "c", "conversations": [
        {"from": "human", "value": "hi", "content": "A", "content_parts": "P"}]}
    assert messages.write(next(iter(sharegpt.read(two, SRC))))["messages"] == [
        {"role": "user", "content": "hi", "convkit:content": "A", "content_parts": "P"}]
    assert messages.write(conv)["messages"] == [
        {"role": "user", "content": "hi", "convkit:content": "hello"},
        {"role": "assistant", "content": "yo", "content_parts": "n/a"},
    ]


def test_sharegpt_content_parts_that_do_not_spell_the_value_are_the_turns_own_field():
    # The ShareGPT writer carries a message's parts as "content_parts", which spell the value.
    # Parts that do not are some other tool's field: kept beside the text, never dropped.
    text_part = [{"type": "text", "text": "Hello there"}]
    image = {"type": "image_url", "image_url": {"url": "x.png"}}
    record = {"id": "a", "conversations": [
        {"from": "human", "value": "Hi", "content_parts": text_part},
        {"from": "human", "value": "Look", "content_parts": [{"type": "text", "text": "Look"}, image]},
        {"from": "gpt", "value": "A cat"},
    ]}
    sharegpt, messages = get_format("sharegpt"), get_format("messages")
    (conv,) = sharegpt.read(record, SRC)
    assert [t.meta for t in conv.turns] == [
        {"convkit:content_parts": text_part},
        {"content_parts": [{"type": "text", "text": "Look"}, image]},
        None,
    ]
    assert sharegpt.write(conv) == record
    as_messages = messages.write(conv)
    assert as_messages["messages"] == [
        {"role": "user", "content": "Hi", "content_parts": text_part},
        {"role": "user", "content": [{"type": "text", "text": "Look"}, image]},
        {"role": "assistant", "content": "A cat"},
    ]
    (back,) = messages.read(as_messages, SRC)
    assert sharegpt.write(back) == record
    # Beside the turn's own escaped field, bare parts stay the metadata's, as before.
    both = {"id": "b", "conversations": [
        {"from": "human", "value": "Hi", "content_parts": text_part, "convkit:content_parts": 1}]}
    (conv,) = sharegpt.read(both, SRC)
    assert conv.turns[0].meta == {"content_parts": text_part, "convkit:content_parts": 1}
    assert sharegpt.write(conv) == both


def test_sharegpt_writes_a_messages_parts_again_after_its_text_changed():
    # HTML conversion (or the counter strip) changes a turn's text: the parts then carry the
    # new text, so that reading the output back keeps the image the content's, not a field's.
    from convkit.model import media_parts

    image = {"type": "image_url", "image_url": {"url": "cat.png"}}
    record = {"id": "a", "messages": [
        {"role": "user", "content": "What is it?"},
        {"role": "assistant", "content": [{"type": "text", "text": "<p>A <b>cat</b></p>"}, image]},
        {"role": "assistant", "content": [{"type": "text", "text": "<p>Only text</p>"}]},
    ]}
    sharegpt, messages = get_format("sharegpt"), get_format("messages")
    (conv,) = messages.read(record, SRC)
    conv.turns[1].content = "A **cat**"  # as --html always converts it
    conv.turns[2].content = "Only text"
    out = sharegpt.write(conv)
    assert out["conversations"][1:] == [
        {"from": "gpt", "value": "A **cat**",
         "content_parts": [{"type": "text", "text": "A **cat**"}, image]},
        {"from": "gpt", "value": "Only text"},
    ]
    (back,) = sharegpt.read(out, SRC)
    assert media_parts(back.turns[1]) == [image]
    assert messages.write(back)["messages"][1:] == [
        {"role": "assistant", "content": [{"type": "text", "text": "A **cat**"}, image]},
        {"role": "assistant", "content": "Only text"},
    ]
    assert messages.write(back) == messages.write(conv)


def test_a_rejected_turn_keeps_its_fields_beside_role_and_content():
    from convkit.model import Turn
    from convkit.process import turn_dict

    turn = Turn("user", "q", {"from": "bing", "role": "r", "convkit:from": "own",
                              "content": None, "content_parts": [{"type": "text", "text": "q"}]})
    assert turn_dict(turn) == {
        "role": "user",
        "content": "q",
        "from": "bing",  # the speaker as written
        "convkit:role": "r",  # the turn's own "role"
        "convkit:from": "own",  # the turn's own "from"
        "content_parts": [{"type": "text", "text": "q"}],
    }
    assert turn_dict(Turn("user", "q", {"content": "own"})) == {
        "role": "user", "content": "q", "convkit:content": "own"}
