"""The messages reader and writer: content parts, tool calls, role aliases, lossless round trips."""

from __future__ import annotations

import pytest

from convkit.formats import RecordRejected, get_format
from convkit.model import Source

SRC = Source("chat.jsonl", 0, 1)


def read(record):
    (conv,) = get_format("messages").read(record, SRC)
    return conv


def round_trip(record, via="messages"):
    """messages -> <via> -> messages, as records."""
    conv = read(record)
    mid = get_format(via).write(conv)
    (back,) = get_format(via).read(mid, SRC)
    return get_format("messages").write(back)


def test_plain_messages():
    conv = read(
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]}
    )
    assert [(t.role, t.content, t.meta) for t in conv.turns] == [
        ("system", "s", None),
        ("user", "q", None),
    ]


def test_content_parts_text_joined_others_kept():
    parts = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}},
        {"type": "text", "text": "Be brief."},
    ]
    conv = read({"messages": [{"role": "user", "content": parts}]})
    assert conv.turns[0].content == "What is this?\nBe brief."
    assert conv.turns[0].meta == {"content_parts": parts}
    out = get_format("messages").write(conv)
    assert out["messages"][0] == {"role": "user", "content": parts}  # unchanged text: as it was


def test_changed_text_is_written_as_one_text_part_before_the_other_parts():
    image = {"type": "image_url", "image_url": {"url": "u"}}
    conv = read(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "<b>hi</b>"}, image]}]}
    )
    conv.turns[0].content = "**hi**"
    out = get_format("messages").write(conv)
    assert out["messages"][0]["content"] == [{"type": "text", "text": "**hi**"}, image]
    # text-only parts whose text changed become a plain string
    conv = read({"messages": [{"role": "user", "content": [{"type": "input_text", "text": "a"}]}]})
    conv.turns[0].content = "b"
    assert get_format("messages").write(conv)["messages"][0]["content"] == "b"


def test_tool_calls_and_tool_turns_are_kept():
    record = {
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "18C"},
            {"role": "assistant", "content": "It is 18C."},
        ],
        "tools": [{"type": "function", "function": {"name": "weather"}}],
    }
    conv = read(record)
    assert conv.roles() == ["user", "assistant", "tool", "assistant"]
    assert conv.turns[1].content == "" and conv.turns[1].meta["tool_calls"][0]["id"] == "c1"
    assert conv.turns[2].meta == {"tool_call_id": "c1"}
    assert conv.meta == {"tools": record["tools"]}
    out = get_format("messages").write(conv)
    assert out["messages"][1]["tool_calls"] == record["messages"][1]["tool_calls"]
    assert out["messages"][2] == {"role": "tool", "content": "18C", "tool_call_id": "c1"}


def test_role_aliases_read_canonically_and_write_back():
    conv = read(
        {
            "messages": [
                {"role": "developer", "content": "d"},
                {"role": "function", "name": "f", "content": "r"},
            ]
        }
    )
    assert conv.roles() == ["system", "tool"]
    out = get_format("messages").write(conv)
    assert [m["role"] for m in out["messages"]] == ["developer", "function"]
    assert out["messages"][1] == {"role": "function", "content": "r", "name": "f"}


def test_sharegpt_speakers_left_as_roles_are_read_as_the_roles_they_name():
    # TRL's ShareGPT conversion renames from/value to role/content and keeps the values,
    # which no chat template knows: they are read as roles and written as those.
    record = {"messages": [{"role": "human", "content": "Hi?"}, {"role": "gpt", "content": "Hey."},
                           {"role": "chatgpt", "content": "Hello."}]}
    conv = read(record)
    assert conv.roles() == ["user", "assistant", "assistant"]
    assert [t.meta for t in conv.turns] == [None, None, None]
    assert get_format("messages").write(conv)["messages"] == [
        {"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hey."},
        {"role": "assistant", "content": "Hello."},
    ]


def test_roles_are_read_in_any_case_and_written_in_lower_case():
    record = {"messages": [{"role": "System", "content": "Be brief."},
                           {"role": "USER", "content": "Hi?"}, {"role": "Assistant", "content": "Hey."},
                           {"role": "Developer", "content": "x"}]}
    conv = read(record)
    assert conv.roles() == ["system", "user", "assistant", "system"]
    assert get_format("messages").write(conv)["messages"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
        {"role": "assistant", "content": "Hey."}, {"role": "developer", "content": "x"},
    ]
    with pytest.raises(RecordRejected) as e:
        read({"messages": [{"role": "Robot", "content": "x"}]})
    assert str(e.value) == "unknown role 'Robot' in messages[0].role"


@pytest.mark.parametrize(
    "messages,reason,message",
    [
        (
            [{"role": "robot", "content": "x"}],
            "unknown_role",
            "unknown role 'robot' in messages[0].role",
        ),
        (
            [{"role": "user", "content": 5}],
            "invalid_record",
            "expected messages[0].content to be a string or a list of parts, got number",
        ),
        (
            [{"role": "user", "content": ["x"]}],
            "invalid_record",
            "expected messages[0].content[0] to be an object, got string",
        ),
        (
            [{"role": "user", "content": [{"text": "x"}]}],
            "invalid_record",
            "expected messages[0].content[0].type to be a string, got null",
        ),
        (
            [{"role": "user", "content": [{"type": "text", "text": 1}]}],
            "invalid_record",
            "expected messages[0].content[0].text to be a string, got number",
        ),
        ("x", "invalid_record", 'expected "messages" to be a list, got string'),
    ],
)
def test_rejections(messages, reason, message):
    with pytest.raises(RecordRejected) as e:
        read({"messages": messages})
    assert (e.value.reason, e.value.message) == (reason, message)


RECORDS = [
    {
        "id": "a",
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a"},
        ],
        "model": "gpt-4",
        "lang": "en",
    },
    {
        "id": "b",
        "messages": [
            {"role": "user", "content": "ünïcödé\n\n```py\nx = 1\n```"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "again"},
        ],
    },
    {"id": "7", "messages": []},
    {
        "id": "aliases",
        "messages": [
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "function_call": {"name": "weather"}},
            {"role": "function", "name": "weather", "content": "18 C"},
            {"role": "assistant", "content": "18 C."},
        ],
    },
    {
        # Fields named like a layout's structure, bare and already prefixed.
        "id": "colliding",
        "messages": [
            {"role": "user", "content": "q", "from": "bob", "value": 1, "content_parts": "p",
             "convkit:role": "r", "convkit:from": 2, "convkit:convkit:value": 3},
            {"role": "developer", "content": "s", "from": "x", "convkit:role": "developer"},
            {"role": "assistant", "content": None, "tool_calls": [], "convkit:content": "c"},
        ],
        "conversations": "own",
        "convkit:messages": "m",
        "convkit:conversations": "cc",
        "convkit:id": 5,
    },
]


def test_fields_named_like_the_sharegpt_structure_are_written_escaped():
    (record,) = [r for r in RECORDS if r["id"] == "colliding"]
    out = get_format("sharegpt").write(read(record))
    assert out == {
        "id": "colliding",
        "conversations": [
            {"from": "human", "value": "q", "convkit:from": "bob", "convkit:value": 1,
             "convkit:content_parts": "p", "role": "r", "convkit:convkit:from": 2,
             "convkit:convkit:convkit:value": 3},
            {"from": "system", "value": "s", "role": "developer", "convkit:from": "x",
             "convkit:role": "developer"},
            {"from": "gpt", "value": "", "tool_calls": [], "convkit:content": "c",
             "content": None},
        ],
        "convkit:conversations": "own",
        "messages": "m",
        "convkit:convkit:conversations": "cc",
        "convkit:id": 5,
    }


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r["id"])
def test_messages_sharegpt_messages_is_lossless(record):
    assert round_trip(record, via="sharegpt") == record


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r["id"])
def test_messages_messages_is_lossless(record):
    assert round_trip(record, via="messages") == record


def test_messages_with_tool_calls_round_trip_through_messages():
    record = {
        "id": "t",
        "messages": [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "c", "function": {"name": "f"}}],
            },
            {"role": "tool", "content": "r", "tool_call_id": "c"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "x"},
                    {"type": "image_url", "image_url": {"url": "u"}},
                ],
            },
        ],
    }
    assert round_trip(record) == record


def _convert_lines(tmp_path, records, *args, **options):
    import json

    import convkit

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    rejects = tmp_path / "rejects.jsonl"
    options.setdefault("output_format", "messages")
    convkit.convert(str(src), str(out), rejects=str(rejects), workers=1, **options)
    lines = out.read_text(encoding="utf-8").splitlines()
    return [json.loads(x) for x in lines], rejects.read_text(encoding="utf-8")


TOOL_CONVERSATION = {
    "id": "w",
    "messages": [
        {"role": "user", "content": "What is the weather in Paris today?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "{\"celsius\": 18}"},
        {"role": "assistant", "content": "It is 18 C in Paris."},
    ],
}


def test_a_tool_calling_conversation_passes_the_default_filters(tmp_path):
    out, rejects = _convert_lines(tmp_path, [TOOL_CONVERSATION], input_format="messages")
    assert rejects == ""
    assert out == [TOOL_CONVERSATION]  # null content written back as null


HTML_LOOKING = {
    "id": "h",
    "messages": [
        {"role": "user", "content": "1 / 2kg of flour is how many grams exactly?"},
        {"role": "assistant", "content": "<table>\n <tr><td>Ann</td></tr>\n <tr><td>Bob</td></tr>\n</table>"},
    ],
}


def test_html_auto_leaves_text_of_formats_other_than_sharegpt_as_written(tmp_path):
    out, _ = _convert_lines(tmp_path, [HTML_LOOKING], input_format="messages")
    assert out == [HTML_LOOKING]
    # Through ShareGPT's writer and back, still as written.
    out, _ = _convert_lines(tmp_path, [HTML_LOOKING], input_format="messages",
                            output_format="sharegpt")
    (back,) = _convert_lines(tmp_path, out, input_format="sharegpt", output_format="messages",
                             html="never")[0]
    assert back == HTML_LOOKING


def test_html_always_converts_any_format_but_strips_counters_only_from_scraped_pages(tmp_path):
    out, _ = _convert_lines(tmp_path, [HTML_LOOKING], input_format="messages", html="always")
    assert out[0]["messages"] == [
        {"role": "user", "content": "1 / 2kg of flour is how many grams exactly?"},
        {"role": "assistant", "content": "| Ann |\n| --- |\n| Bob |"},
    ]


def test_html_auto_still_cleans_sharegpt_pages(tmp_path):
    page = {"id": "p", "conversations": [
        {"from": "human", "value": "2 / 2Name two people"},
        {"from": "gpt", "value": "<div><table><tr><td>Ann</td></tr><tr><td>Bob</td></tr></table></div>"},
    ]}
    out, _ = _convert_lines(tmp_path, [page], output_format="sharegpt")
    assert out[0]["conversations"] == [
        {"from": "human", "value": "Name two people"},
        {"from": "gpt", "value": "| Ann |\n| --- |\n| Bob |"},
    ]
    # Read through --from auto, the record is still a scraped page.
    out, _ = _convert_lines(tmp_path, [page], input_format="auto", output_format="sharegpt")
    assert out[0]["conversations"][1]["value"] == "| Ann |\n| --- |\n| Bob |"


def test_the_api_writes_messages_for_input_other_than_sharegpt_as_the_cli_does(tmp_path):
    import json

    import convkit

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(TOOL_CONVERSATION) + "\n", encoding="utf-8")
    for fmt, key in (("messages", "messages"), ("auto", "messages")):
        out = tmp_path / f"{fmt}.jsonl"
        stats = tmp_path / f"{fmt}.stats.json"
        convkit.convert(str(src), str(out), stats=str(stats), input_format=fmt, workers=1)
        assert list(json.loads(out.read_text())) == ["id", key]
        assert json.loads(stats.read_text())["options"]["output_format"] == "messages"
    page = tmp_path / "page.jsonl"
    page.write_text(json.dumps({"id": "p", "conversations": [
        {"from": "human", "value": "A question long enough?"}, {"from": "gpt", "value": "Yes."}]}) + "\n")
    convkit.convert(str(page), str(tmp_path / "p.jsonl"), workers=1)
    assert list(json.loads((tmp_path / "p.jsonl").read_text())) == ["id", "conversations"]


def test_messages_under_conversations_or_conversation_are_read():
    # LLaMA-Factory's ShareGPT layout with role/content tags; lmsys-chat-1m's "conversation".
    for key in ("conversations", "conversation"):
        record = {"id": "x", key: [{"role": "user", "content": "Hi?"},
                                   {"role": "assistant", "content": "Hello."}], "model": "m"}
        conv = read(record)
        assert (conv.id, conv.roles(), conv.meta) == ("x", ["user", "assistant"], {"model": "m"})
        assert get_format("messages").detect(record)
        assert get_format("sharegpt").detect(record) is False
    with pytest.raises(RecordRejected) as e:
        read({"conversations": [{"role": "user", "content": 3}]})
    assert str(e.value) == (
        "expected conversations[0].content to be a string or a list of parts, got number"
    )


def test_an_integer_id_is_written_as_an_integer():
    record = {"id": 5, "messages": [{"role": "user", "content": "Hi?"},
                                    {"role": "assistant", "content": "Hello."}]}
    conv = read(record)
    assert conv.id == "5"
    assert get_format("messages").write(conv)["id"] == 5
    assert get_format("sharegpt").write(conv)["id"] == 5
    segment = conv.with_turns(conv.turns)
    segment.id = "5_0"  # a segment's id is its own
    assert get_format("messages").write(segment)["id"] == "5_0"
