"""Rendered text: reading ChatML, Llama 2/3, ### Human:, Alpaca and Vicuna text back into turns,
and writing conversations through chat templates."""

from __future__ import annotations

import json

import pytest

from convkit.errors import ConfigError
from convkit.formats import RecordRejected, detect_record, get_format
from convkit.formats.text import detect_style
from convkit.model import Conversation, Source, Turn

SRC = Source("text.jsonl", 0, 1)


def turns(text, **options):
    (conv,) = get_format("text", **options).read({"text": text}, SRC)
    return [(t.role, t.content) for t in conv.turns]


def reject(text, **options):
    with pytest.raises(RecordRejected) as e:
        list(get_format("text", **options).read({"text": text}, SRC))
    return e.value.reason, e.value.message


# --------------------------------------------------------------------------- reading


def test_chatml_keeps_content_exactly():
    text = "<|im_start|>system\nBe nice.<|im_end|>\n<|im_start|>user\n  Hi\n<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
    assert turns(text) == [("system", "Be nice."), ("user", "  Hi\n"), ("assistant", "Hello!")]


def test_chatml_unterminated_last_message_and_generation_prompt():
    assert turns("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello") == [
        ("user", "Hi"),
        ("assistant", "Hello"),
    ]
    assert turns("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n") == [("user", "Hi")]


def test_chatml_stray_text_and_unknown_roles():
    assert reject("junk<|im_start|>user\nHi<|im_end|>") == (
        "unparsed_text",
        "text outside the chatml markers: 'junk'",
    )
    assert reject("<|im_start|>narrator\nHi<|im_end|>") == (
        "unknown_role",
        "unknown role 'narrator' in chatml text",
    )


def test_llama_3():
    text = (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>"
        "<|start_header_id|>ipython<|end_header_id|>\n\nR<|eot_id|>"
    )
    assert turns(text) == [("system", "S"), ("user", "Q"), ("assistant", "A"), ("tool", "R")]


def test_llama_2_with_system_prompt():
    text = "<s>[INST] <<SYS>>\nBe nice.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST] Ciao </s>"
    assert turns(text) == [
        ("system", "Be nice."),
        ("user", "Hi"),
        ("assistant", "Hello!"),
        ("user", "Bye"),
        ("assistant", "Ciao"),
    ]
    assert turns("[INST] Hi [/INST]") == [("user", "Hi")]


def test_llama_2_removes_only_the_frames_bos_and_eos():
    text = (
        "<s>[INST] Strike? [/INST] Use <s>old</s>, or </s> </s><s>[INST] And? [/INST] "
        "Ends with </s> </s>"
    )
    assert turns(text) == [
        ("user", "Strike?"),
        ("assistant", "Use <s>old</s>, or </s>"),
        ("user", "And?"),
        ("assistant", "Ends with </s>"),
    ]


def test_human_assistant():
    text = "### Human: How do I sort?### Assistant: Use sorted().### Human: Thanks ### Assistant:"
    assert turns(text) == [
        ("user", "How do I sort?"),
        ("assistant", "Use sorted()."),
        ("user", "Thanks"),
    ]
    assert turns("A preamble.\n### Human: Hi\n### Assistant: Yo") == [
        ("system", "A preamble."),
        ("user", "Hi"),
        ("assistant", "Yo"),
    ]


def test_alpaca_text():
    text = (
        "Below is an instruction that describes a task, paired with an input that provides further "
        "context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nSum.\n\n### Input:\n1 2\n\n### Response:\n3"
    )
    got = turns(text)
    assert got[0][0] == "system"
    assert got[1:] == [("user", "Sum.\n\n1 2"), ("assistant", "3")]
    assert reject("### Input:\nx\n### Instruction:\ny\n### Response:\nz") == (
        "unparsed_text",
        '"### Input:" before any "### Instruction:"',
    )


def test_vicuna():
    text = "A chat. USER: Hi ASSISTANT: Hello!</s>USER: Bye ASSISTANT: Ciao</s>"
    assert turns(text) == [
        ("system", "A chat."),
        ("user", "Hi"),
        ("assistant", "Hello!"),
        ("user", "Bye"),
        ("assistant", "Ciao"),
    ]


def test_style_option_forces_a_parser():
    assert turns("USER: a ASSISTANT: b", style="vicuna") == [("user", "a"), ("assistant", "b")]
    assert reject("plain prose") == (
        "unknown_text_style",
        '"text" is in no known rendered form (ChatML, Llama 2/3, ### Human:, Alpaca, Vicuna)',
    )
    assert reject("no markers here", style="chatml") == (
        "unparsed_text",
        "text outside the chatml markers: 'no markers here'",
    )
    assert reject("", style="llama-2") == ("no_turns", '"text" holds no llama-2 turns')


def test_meta_and_provenance():
    (conv,) = get_format("text").read(
        {"id": "x", "text": "### Human: a ### Assistant: b", "source": "guanaco"}, SRC
    )
    assert conv.id == "x"
    assert conv.meta == {
        "source": "guanaco",
        "convkit": {"reader": "text", "style": "human-assistant"},
    }


@pytest.mark.parametrize(
    "text,style",
    [
        ("<|im_start|>user\nx<|im_end|>", "chatml"),
        ("[INST] x [/INST] y", "llama-2"),
        ("plain", None),
        ("USER: says", None),
        ("### Instruction:\nx\n### Response:\ny", "alpaca"),
        # The frame is outermost: markers of other forms inside a message do not decide.
        ("### Human: What is [INST] x [/INST]?### Assistant: A Llama 2 frame.", "human-assistant"),
        ("### Human: What is <|im_start|>?### Assistant: ChatML's opener.", "human-assistant"),
        ("<|im_start|>user\n### Human: hi<|im_end|>", "chatml"),
        ("Preamble. USER: what is ### Human:? ASSISTANT: A header.</s>", "vicuna"),
        ("[INST] Explain <|start_header_id|> [/INST] Llama 3's header.", "llama-2"),
    ],
)
def test_detect_style(text, style):
    assert detect_style(text) == style


def test_plain_text_records_are_not_detected():
    assert detect_record({"text": "Once upon a time."}).name is None


# --------------------------------------------------------------------------- writing

CONV = Conversation(
    "c1",
    [
        Turn("system", "Be nice."),
        Turn("user", "Hi"),
        Turn("assistant", "Hello!"),
        Turn("user", "Bye"),
        Turn("assistant", "Ciao"),
    ],
    {"lang": "en"},
)


def test_writer_renders_through_the_default_chatml_template():
    out = get_format("text").write(CONV)
    assert out["id"] == "c1" and out["lang"] == "en"
    assert out["text"].startswith("<|im_start|>system\nBe nice.<|im_end|>\n")
    assert out["convkit"] == {"template": "chatml"}


def test_writer_records_the_template_file_and_its_hash(tmp_path):
    f = tmp_path / "mine.jinja"
    f.write_text("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}")
    fmt = get_format("text", template=str(f))
    out = fmt.write(CONV)
    assert out["text"] == "<system>Be nice.<user>Hi<assistant>Hello!<user>Bye<assistant>Ciao"
    assert out["convkit"] == {"template": "mine.jinja", "template_sha256": fmt.template.sha256}


def test_writer_keeps_earlier_provenance():
    conv = Conversation(
        "c", CONV.turns, {"convkit": {"reader": "alpaca", "prompt_template": "default"}}
    )
    out = get_format("text", template="llama-3").write(conv)
    assert out["convkit"] == {
        "reader": "alpaca",
        "prompt_template": "default",
        "template": "llama-3",
    }


def test_a_field_named_text_is_written_escaped_and_read_back():
    conv = Conversation("c", CONV.turns, {"text": "own", "convkit:text": 2, "lang": "en"})
    out = get_format("text").write(conv)
    assert {k: v for k, v in out.items() if k != "text"} == {
        "id": "c",
        "convkit:text": "own",
        "convkit:convkit:text": 2,
        "lang": "en",
        "convkit": {"template": "chatml"},
    }
    (back,) = get_format("text").read(out, SRC)
    assert back.meta == {
        "text": "own",
        "convkit:text": 2,
        "lang": "en",
        "convkit": {"template": "chatml", "reader": "text", "style": "chatml"},
    }


def test_writer_rejects_what_the_template_refuses():
    conv = Conversation("c", [Turn("user", "a"), Turn("user", "b")])
    with pytest.raises(RecordRejected) as e:
        get_format("text", template="llama-2").write(conv)
    assert e.value.reason == "template_error"
    assert e.value.message.startswith("chat template 'llama-2': llama-2 needs roles alternating")


def test_writer_rejects_a_conversation_the_template_renders_as_nothing(tmp_path):
    only_system = tmp_path / "system.jinja"
    only_system.write_text(
        "{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}{% endif %}{% endfor %}"
    )
    writer = get_format("text", template=str(only_system))
    conv = Conversation("c", [Turn("user", "a"), Turn("assistant", "b")])
    with pytest.raises(RecordRejected) as e:
        writer.write(conv)
    assert (e.value.reason, e.value.message) == (
        "template_error", "chat template 'system.jinja' rendered an empty text"
    )
    conv.turns.insert(0, Turn("system", " \n"))
    with pytest.raises(RecordRejected) as e:
        writer.write(conv)
    assert e.value.message == "chat template 'system.jinja' rendered only white space"
    conv.turns[0].content = "Be brief."
    assert writer.write(conv)["text"] == "Be brief."


def test_writer_bad_template_fails_at_once():
    with pytest.raises(ConfigError, match="^unknown chat template 'nope'"):
        get_format("text", template="nope")


def test_writer_token_options():
    out = get_format("text", template="llama-2", bos_token="", eos_token="").write(
        Conversation("c", [Turn("user", "a"), Turn("assistant", "b")])
    )
    assert out["text"] == "[INST] a [/INST] b "


@pytest.mark.parametrize("template", ["chatml", "llama-2", "llama-3", "vicuna", "alpaca"])
def test_render_then_read_back_gives_the_same_turns(template):
    out = get_format("text", template=template).write(CONV)
    (back,) = get_format("text").read(json.loads(json.dumps(out)), SRC)
    assert [(t.role, t.content) for t in back.turns] == [(t.role, t.content) for t in CONV.turns]
    style = {"vicuna": "vicuna", "alpaca": "alpaca"}.get(template, template)
    assert back.meta["convkit"]["style"] == style
