"""Chat templates: built-ins, loading from files, and the sandbox a downloaded template runs in."""

from __future__ import annotations

import json
import pickle

import pytest

from convkit.errors import ConfigError
from convkit.model import Conversation, Turn
from convkit.templates import (
    ChatTemplate,
    TemplateRenderError,
    TemplateSecurityError,
    builtin_template_names,
    load_template,
)

MSGS = [
    {"role": "system", "content": "Be nice."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Bye"},
    {"role": "assistant", "content": "Ciao"},
]


def render(name, messages=MSGS, **kw):
    return load_template(name).render(messages, **kw)


# --------------------------------------------------------------------------- built-ins


def test_builtin_names():
    assert builtin_template_names() == ["chatml", "llama-2", "llama-3", "vicuna-v1.1", "alpaca"]


def test_chatml():
    assert render("chatml") == (
        "<|im_start|>system\nBe nice.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
        "<|im_start|>assistant\nCiao<|im_end|>\n"
    )
    assert render("chatml", MSGS[1:2], add_generation_prompt=True) == (
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_llama_2_matches_the_reference_layout():
    assert render("llama-2") == (
        "<s>[INST] <<SYS>>\nBe nice.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST] Ciao </s>"
    )
    assert render("llama2", MSGS[1:3]) == "<s>[INST] Hi [/INST] Hello! </s>"


def test_llama_2_refuses_roles_that_do_not_alternate():
    with pytest.raises(TemplateRenderError) as e:
        render("llama-2", [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    assert e.value.message == (
        "chat template 'llama-2': llama-2 needs roles alternating user/assistant after one "
        "optional system message"
    )
    assert e.value.reason == "template_error"


def test_llama_3():
    assert render("llama-3", MSGS[:3]) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe nice.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
    )


def test_vicuna_v1_1_matches_fastchat():
    assert render("vicuna", MSGS[1:]) == (
        "A chat between a curious user and an artificial intelligence assistant. The assistant "
        "gives helpful, detailed, and polite answers to the user's questions. "
        "USER: Hi ASSISTANT: Hello!</s>USER: Bye ASSISTANT: Ciao</s>"
    )
    assert (
        render("vicuna-v1.1", MSGS[:2], add_generation_prompt=True)
        == "Be nice. USER: Hi ASSISTANT:"
    )
    with pytest.raises(TemplateRenderError, match="vicuna-v1.1 has no role tool"):
        render("vicuna", [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}])


def test_alpaca_chat_template():
    assert render("alpaca", MSGS[1:3]) == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nHi\n\n### Response:\nHello!</s>\n\n"
    )


CALL = [
    {"role": "user", "content": "Weather in Oslo?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "content": "18 C", "tool_call_id": "c1"},
    {"role": "assistant", "content": "It is 18 C."},
]


@pytest.mark.parametrize("name", ["chatml", "llama-2", "llama-3", "vicuna-v1.1", "alpaca"])
def test_builtins_refuse_tool_calls_they_cannot_write(name):
    # Written as its text alone, the call would be an empty assistant turn in training data.
    with pytest.raises(TemplateRenderError) as e:
        render(name, CALL)
    assert e.value.message == (
        f"chat template {name!r}: {name} has no way to write tool calls; use the chat template "
        "of a model trained for tools (its tokenizer_config.json)"
    )
    # OpenAI's older single call too.
    legacy = {"role": "assistant", "content": "", "function_call": {"name": "w", "arguments": "{}"}}
    with pytest.raises(TemplateRenderError, match="has no way to write tool calls"):
        render(name, [CALL[0], legacy])
    # An empty list is no call.
    assert render(name, [CALL[0], {**CALL[1], "content": "Sure.", "tool_calls": []}])


IMAGE_TURN = Turn(
    "user",
    "What is this?",
    {
        "content_parts": [
            {"type": "image_url", "image_url": {"url": "http://x/cat.png"}},
            {"type": "text", "text": "What is this?"},
        ]
    },
)


@pytest.mark.parametrize("name", ["chatml", "llama-2", "llama-3", "vicuna-v1.1", "alpaca"])
def test_builtins_refuse_images_they_cannot_write(name):
    conv = Conversation("i", [IMAGE_TURN, Turn("assistant", "A cat.")])
    with pytest.raises(TemplateRenderError) as e:
        load_template(name).render_conversation(conv)
    assert e.value.message == (
        f"chat template {name!r}: {name} holds text only: a message has images or other "
        "non-text parts; use the chat template of a model trained on them"
    )


def test_a_multimodal_template_gets_the_parts():
    t = ChatTemplate(
        "{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}"
        "{% for p in m.content %}{{ '<image>' if p.type == 'image_url' else p.text }}"
        "{% endfor %}{% endif %}|{% endfor %}",
        name="mm.jinja",
    )
    conv = Conversation("i", [IMAGE_TURN, Turn("assistant", "A cat.")])
    assert t.render_conversation(conv) == "<image>What is this?|A cat.|"


def test_special_tokens_can_be_overridden():
    t = load_template("llama-2", bos_token="", eos_token="<|end|>")
    assert t.render(MSGS[1:3]) == "[INST] Hi [/INST] Hello! <|end|>"


def test_a_special_token_the_template_never_uses_is_refused(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_template("chatml", eos_token="<|end|>")
    assert str(e.value) == (
        "eos_token (--eos-token) has no effect: chat template 'chatml' never uses eos_token"
    )
    with pytest.raises(ConfigError) as e:
        load_template("vicuna", bos_token="")
    assert str(e.value) == (
        "bos_token (--bos-token) has no effect: chat template 'vicuna-v1.1' never uses "
        "bos_token"
    )
    assert load_template("llama-3", bos_token="<b>").bos_token == "<b>"
    # A template's own set does not count; a macro's use does.
    (tmp_path / "set.jinja").write_text("{% set eos_token = '!' %}{{ eos_token }}")
    with pytest.raises(ConfigError, match="template 'set.jinja' never uses eos_token"):
        load_template(tmp_path / "set.jinja", eos_token="</s>")
    (tmp_path / "macro.jinja").write_text(
        "{% macro end() %}{{ eos_token }}{% endmacro %}{% for m in messages %}{{ end() }}"
        "{% endfor %}"
    )
    assert load_template(tmp_path / "macro.jinja", eos_token="</s>").render(MSGS[:1]) == "</s>"


def test_render_conversation_passes_tools_and_canonical_roles():
    t = ChatTemplate(
        "{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}{{ tools | tojson }}",
        name="t",
    )
    conv = Conversation(
        "c",
        [
            Turn("system", "d", {"from": "developer"}),
            Turn("user", "<é>", {"content_parts": [{"type": "text", "text": "<é>"}]}),
        ],
        {"tools": [{"name": "f"}]},
    )
    assert t.render_conversation(conv) == 'system:d;user:<é>;[{"name": "f"}]'


# --------------------------------------------------------------------------- loading


def test_unknown_template_name():
    with pytest.raises(ConfigError) as e:
        load_template("zephyr")
    assert str(e.value) == (
        "unknown chat template 'zephyr': not a built-in "
        "(chatml, llama-2, llama-3, vicuna-v1.1, alpaca) nor a file"
    )


MISTRALISH = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}"
    "{% endfor %}"
)


def test_tokenizer_config_with_added_token_objects(tmp_path):
    cfg = tmp_path / "tokenizer_config.json"
    cfg.write_text(
        json.dumps(
            {
                "chat_template": MISTRALISH,
                "bos_token": {"__type": "AddedToken", "content": "<s>"},
                "eos_token": "</s>",
            }
        )
    )
    t = load_template(cfg)
    assert t.name == "tokenizer_config.json"
    assert t.render(MSGS[1:3]) == "<s>[INST] Hi [/INST]Hello!</s>"
    assert t.provenance() == {"template": "tokenizer_config.json", "template_sha256": t.sha256}
    assert load_template(tmp_path).source == MISTRALISH  # a model directory


def test_tokenizer_config_with_named_templates(tmp_path):
    cfg = tmp_path / "tokenizer_config.json"
    cfg.write_text(
        json.dumps(
            {
                "chat_template": [
                    {"name": "default", "template": "D{{ messages | length }}"},
                    {"name": "tool_use", "template": "T{{ messages | length }}"},
                ]
            }
        )
    )
    assert load_template(cfg).render(MSGS) == "D5"
    t = load_template(cfg, variant="tool_use")
    assert t.render(MSGS) == "T5" and t.name == "tokenizer_config.json:tool_use"
    with pytest.raises(
        ConfigError, match="has no chat template named 'rag'; it has: default, tool_use"
    ):
        load_template(cfg, variant="rag")


def test_a_model_folder_template_takes_bos_and_eos_from_its_tokenizer_config(tmp_path):
    # transformers saves the template as chat_template.jinja, the tokens beside it.
    (tmp_path / "chat_template.jinja").write_text(
        "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"
    )
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"bos_token": {"content": "<s>"}, "eos_token": "</s>"})
    )
    for spec in (tmp_path, tmp_path / "chat_template.jinja"):
        t = load_template(spec)
        assert (t.bos_token, t.eos_token) == ("<s>", "</s>")
        assert t.render(MSGS).startswith("<s>") and t.render(MSGS).endswith("</s>")
    assert load_template(tmp_path, eos_token="<|end|>").eos_token == "<|end|>"
    # Any other .jinja file is the template alone.
    (tmp_path / "mine.jinja").write_text("{{ eos_token }}")
    assert load_template(tmp_path / "mine.jinja").eos_token == ""


def test_jinja_file_and_directory(tmp_path):
    (tmp_path / "chat_template.jinja").write_text(
        "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
    )
    t = load_template(tmp_path / "chat_template.jinja")
    assert t.render(MSGS[1:3]) == "Hi\nHello!\n"  # trim_blocks, as transformers renders
    assert load_template(tmp_path).name == "chat_template.jinja"


def test_config_without_template_and_bad_files(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text('{"eos_token": "</s>"}')
    with pytest.raises(ConfigError, match="holds no chat template"):
        load_template(tmp_path)
    with pytest.raises(ConfigError, match="^'tokenizer_config.json' has no \"chat_template\"$"):
        load_template(tmp_path / "tokenizer_config.json")
    bad = tmp_path / "bad.jinja"
    bad.write_text("{% for m in messages %}")
    with pytest.raises(ConfigError, match="^chat template 'bad.jinja' does not compile: "):
        load_template(bad)


def test_templates_pickle_by_source():
    t = load_template("chatml")
    t2 = pickle.loads(pickle.dumps(t))
    assert t2.render(MSGS[1:2]) == t.render(MSGS[1:2])


def test_generation_block_and_loop_controls_and_helpers():
    t = ChatTemplate(
        "{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}"
        "{% if m.role == 'assistant' %}{% generation %}[{{ m.content }}]{% endgeneration %}"
        "{% else %}{{ m.content }}{% endif %}{% endfor %}{{ strftime_now('%Y') | length }}",
        name="g",
    )
    assert t.render(MSGS) == "Hi[Hello!]Bye[Ciao]4"


def test_template_errors_on_data_are_render_errors():
    t = ChatTemplate("{{ messages[0]['content'] + 1 }}", name="t")
    with pytest.raises(TemplateRenderError, match="^chat template 't' failed: TypeError"):
        t.render(MSGS)
    t = ChatTemplate("{{ messages[0].nope.deeper }}", name="t")
    with pytest.raises(TemplateRenderError):
        t.render(MSGS)


# --------------------------------------------------------------------------- the sandbox

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ messages.__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.system('echo pwned') }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ joiner.__init__.__globals__.__builtins__.open('/etc/passwd').read() }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context.environment }}",
    "{{ raise_exception.__globals__ }}",
    "{{ '{0.__class__.__mro__}'.format(messages) }}",
    "{{ (messages|attr('__class__')).__mro__ }}",
    "{{ messages[0].__class__ }}",
    "{{ messages.pop() }}",
    "{{ messages.append({'role': 'x'}) }}",
    "{{ messages[0].update({'content': 'changed'}) }}",
    "{{ messages[0].clear() }}",
    "{% set x = messages.__setitem__(0, 1) %}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_a_hostile_template_cannot_reach_python_objects(source):
    messages = [{"role": "user", "content": "Hi"}]
    t = ChatTemplate(source, name="hostile.jinja")
    try:
        out = t.render(messages)
    except (TemplateSecurityError, TemplateRenderError):
        out = ""
    assert (
        "class" not in out and "module" not in out and "function" not in out and "root:" not in out
    )
    assert "uid=" not in out and "pwned" not in out
    assert messages == [{"role": "user", "content": "Hi"}]  # nothing changed the data


@pytest.mark.parametrize("source", [e for e in ESCAPES if "._" in e or "|attr" in e])
def test_reaching_for_a_hidden_attribute_is_refused_not_rendered_as_nothing(source):
    # Jinja's own sandbox renders "x.__class__" as an empty string: the template would still
    # write training text. Here it is a security error, which stops the run.
    with pytest.raises(TemplateSecurityError, match="is not allowed"):
        ChatTemplate(source, name="hostile.jinja").render([{"role": "user", "content": "Hi"}])


def test_a_template_nested_too_deeply_to_compile_is_a_config_error():
    for source in ("{{ " + "(" * 300 + "1" + ")" * 300 + " }}", "{% if true %}" * 3000):
        with pytest.raises(ConfigError, match="^chat template 'deep.jinja' does not compile: "):
            ChatTemplate(source, name="deep.jinja")


def test_tools_and_documents_are_none_when_not_given_as_transformers_renders():
    t = ChatTemplate(
        "{% if tools is not none %}{{ tools | tojson }}{% endif %}"
        "{% if documents is none %}no documents{% endif %}",
        name="t.jinja",
    )
    assert t.render(MSGS) == "no documents"
    assert t.render(MSGS, tools=[{"name": "f"}]) == '[{"name": "f"}]no documents'


def test_attribute_escape_is_a_security_error():
    with pytest.raises(TemplateSecurityError, match="broke the sandbox"):
        ChatTemplate("{{ ''.__class__.__mro__ }}", name="h").render(MSGS)
    with pytest.raises(TemplateSecurityError):
        ChatTemplate("{{ messages.append(1) }}", name="h").render(MSGS)


@pytest.mark.parametrize(
    "source",
    [
        "{% include '{secret}' %}",
        "{% import '{secret}' as s %}{{ s }}",
        "{% extends '{secret}' %}",
        "{% from '{secret}' import x %}{{ x }}",
    ],
)
def test_a_hostile_template_cannot_read_files(tmp_path, source):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    t = ChatTemplate(source.replace("{secret}", str(secret)), name="hostile.jinja")
    with pytest.raises((TemplateRenderError, TemplateSecurityError, ConfigError)) as e:
        t.render(MSGS)
    assert "TOP-SECRET" not in str(e.value)


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'a' * 100000000 }}",
        "{{ [1] * 100000000 }}",
        "{{ 100000000 * 'a' }}",
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "{{ 2 ** 100000 }}",
        "{{ 7 ** 9999999 }}",
        "{{ 'x' | center(1000000000) }}",
        "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
        # Found by an audit: each built over 50 M characters without an error.
        "{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}",
        "{% set s = 'a' * 40000000 %}{{ s ~ s }}",
        "{{ '{:>60000000}'.format('a') }}",
        "{{ '{:{w}}'.format('a', w=60000000) }}",
        "{{ '{x:>60000000}'.format_map({'x': 'a'}) }}",
        "{{ '%60000000s' % 'a' }}",
        "{{ '%*s' % (60000000, 'a') }}",
        "{{ '%.60000000f' % 1.5 }}",
        "{{ '%60000000s' | format('a') }}",
        "{{ messages | tojson(indent=12000000) }}",
        "{{ messages | tojson(indent=' ' * 1000) }}",
        "{{ ('a' * 10000).replace('a', 'b' * 10000) }}",
        "{{ ('a' * 10000) | replace('a', 'b' * 10000) }}",
        "{{ range(100000) | join('x' * 1000) }}",
        "{{ ('x' * 1000).join(range(100000) | map('string')) }}",
        "{{ 'a'.ljust(60000000) }}",
        "{{ 'a'.rjust(60000000) }}",
        "{{ 'a'.center(60000000) }}",
        "{{ '1'.zfill(60000000) }}",
        "{{ ('\t' * 1000).expandtabs(100000) }}",
        "{{ ('a' * 100000).translate({97: 'b' * 1000}) }}",
        "{{ lipsum(10000000) }}",
        # Found by a second audit: bytes, a width on every line, many big values, a list
        # whose text doubles with each level, products of huge integers.
        "{{ ('a'.encode() * 60000000) | length }}",
        "{% set ns = namespace(b='ab'.encode()) %}{% for i in range(40) %}"
        "{% set ns.b = ns.b + ns.b %}{% endfor %}",
        "{{ ('x\n' * 10000) | indent(40000000, true) | length }}",
        "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}"
        "{% set ns.l = ns.l + ['a'.ljust(40000000)] %}{% endfor %}",
        "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
        "{% endfor %}{{ ns.l }}",
        "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
        "{% endfor %}{{ ns.l | tojson }}",
        "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
        "{% endfor %}{{ ns.l ~ '' }}",
        "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
        "{% endfor %}{{ '%s' % (ns.l,) }}",
        "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
        "{% endfor %}{{ '{}'.format(ns.l) }}",
        "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
        "{% endfor %}{{ ns.l | string | length }}",
        "{% set ns = namespace(n=3) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}"
        "{% endfor %}{{ ns.n > 0 }}",
    ],
)
def test_a_hostile_template_cannot_exhaust_memory(source):
    with pytest.raises(TemplateSecurityError):
        ChatTemplate(source, name="hog.jinja").render(MSGS)


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}"
        "{{ f(40) }}",
    ],
)
def test_a_hostile_template_cannot_run_for_hours(monkeypatch, source):
    from convkit import templates

    monkeypatch.setattr(templates, "MAX_RENDER_SECONDS", 0.2)
    with pytest.raises(
        TemplateSecurityError, match=r"broke the sandbox: the template ran for over 0.2 s$"
    ):
        ChatTemplate(source, name="slow.jinja").render(MSGS)
    # The clock is the render's: the next one starts afresh.
    assert ChatTemplate("{{ range(3) | list }}", name="r").render(MSGS) == "[0, 1, 2]"


def test_a_macro_that_recurses_without_end_fails_the_conversation_not_the_run():
    # As data nested deeper than tojson recurses would: this conversation cannot be rendered.
    with pytest.raises(TemplateRenderError) as e:
        ChatTemplate("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", name="r").render(MSGS)
    assert e.value.message == (
        "chat template 'r' failed: it recursed too deeply (its macros, or the nesting of the data)"
    )


def test_deep_data_is_measured_without_recursing():
    # Tool-call arguments nested 900 deep, printed as JSON and as text: ordinary data.
    deep: list = []
    for _ in range(900):
        deep = [deep]
    t = ChatTemplate(
        "{{ messages[0].args | length }}{{ messages[0].args | string | length }}", name="t"
    )
    assert t.render([{"role": "user", "content": "x", "args": deep}]) == "11802"


def test_loops_over_strings_and_lists_keep_the_time_limit(monkeypatch):
    from convkit import templates

    monkeypatch.setattr(templates, "MAX_RENDER_SECONDS", 0.2)
    for source in (
        "{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
        "{% set s = [0] * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    ):
        with pytest.raises(TemplateSecurityError, match="ran for over 0.2 s$"):
            ChatTemplate(source, name="slow.jinja").render(MSGS)


@pytest.mark.parametrize(
    "flt",
    ["upper", "trim", "format", "center(10)", "indent", "replace('a', 'b')", "pprint", "title"],
)
def test_text_filters_measure_a_containers_text_first(flt):
    source = (
        "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = [ns.l, ns.l] %}"
        "{% endfor %}{{ ns.l | " + flt + " | length }}"
    )
    with pytest.raises(TemplateSecurityError, match="over the limit of 50000000"):
        ChatTemplate(source, name="hog.jinja").render(MSGS)


def test_a_containers_text_counts_its_integers_digits():
    with pytest.raises(TemplateSecurityError, match="over the limit of 50000000"):
        ChatTemplate("{% set x = 10 ** 4000 %}{{ [x] * 100000 }}", name="hog.jinja").render(MSGS)


@pytest.mark.parametrize("depth,tag", [(25, "for x in messages"), (150, "if true")])
def test_blocks_nested_past_pythons_limits_do_not_compile(depth, tag):
    end = "{% end" + tag.split()[0] + " %}"
    source = ("{% " + tag + " %}") * depth + "x" + end * depth
    with pytest.raises(ConfigError, match="does not compile: its expressions or blocks are nested"):
        ChatTemplate(source, name="deep.jinja")


def test_the_output_limit_counts_the_text_of_content_parts():
    t = ChatTemplate("{% for p in messages[0].content %}{{ p.text }}{% endfor %}", name="mm")
    text = "y" * 1_100_000
    parts = [{"type": "image_url", "image_url": {"url": "u"}}, {"type": "text", "text": text}]
    assert t.render([{"role": "user", "content": parts}]) == text


def test_range_still_behaves_as_a_sequence():
    t = ChatTemplate(
        "{{ range(5) | length }} {{ range(5) | reverse | list }} {{ 3 in range(5) }} "
        "{{ range(10)[2:4] | list }} {% for i in range(3) %}{{ loop.revindex }}{% endfor %}",
        name="r",
    )
    assert t.render(MSGS) == "5 [4, 3, 2, 1, 0] True [2, 3] 321"


def test_range_is_bounded():
    with pytest.raises(TemplateSecurityError, match="MAX_RANGE"):
        ChatTemplate("{{ range(10**9) | list | length }}", name="r").render(MSGS)


def test_ordinary_arithmetic_still_works():
    t = ChatTemplate(
        "{{ 2 ** 10 }} {{ 'ab' * 3 }} {{ [1, 2] + [3] }} {{ 'a' + 'b' }} {{ 'x' | center(5) }}",
        name="ok",
    )
    assert t.render(MSGS) == "1024 ababab [1, 2, 3] ab   x  "


def test_ordinary_formatting_joining_and_replacing_still_work():
    t = ChatTemplate(
        "{{ '%-5s|' % 'ab' }}{{ '%5.1f|' % 2.25 }}{{ '%*d|' % (3, 7) }}{{ '%s %s|' | format('a', 'b') }}"
        "{{ '{:>4}|'.format('x') }}{{ '{:{w}}|'.format('y', w=3) }}{{ '{k}|'.format_map({'k': 1}) }}"
        "{{ 'a b'.replace(' ', '_') }}|{{ 'a b' | replace(' ', '-') }}|{{ ['x', 'y'] | join('-') }}|"
        "{{ '-'.join(['p', 'q']) }}|{{ 'a' ~ 1 ~ 'b' }}|{{ {'k': [1]} | tojson(indent=2) }}|"
        "{{ '100%%' % () }}|{{ 'ab'.ljust(4) }}|{{ '7'.zfill(3) }}",
        name="ok",
    )
    assert t.render(MSGS) == (
        'ab   |  2.2|  7|a b|   x|y  |1|a_b|a-b|x-y|p-q|a1b|{\n  "k": [\n    1\n  ]\n}|100%|ab  |007'
    )


def test_raise_exception_is_a_render_error():
    with pytest.raises(TemplateRenderError) as e:
        ChatTemplate("{{ raise_exception('no system role') }}", name="x.jinja").render(MSGS)
    assert e.value.message == "chat template 'x.jinja': no system role"


def test_without_jinja2_the_error_says_what_to_install(monkeypatch):
    import sys

    import convkit.templates as templates

    monkeypatch.setattr(templates, "_ENV", None)
    for mod in [m for m in sys.modules if m == "jinja2" or m.startswith("jinja2.")]:
        monkeypatch.setitem(sys.modules, mod, None)
    monkeypatch.setitem(sys.modules, "jinja2", None)
    with pytest.raises(ConfigError) as e:
        load_template("chatml")
    assert str(e.value) == ("chat templates need jinja2: pip install jinja2")


def test_strftime_now_formats_the_templates_now_which_pickles_along():
    from datetime import datetime

    src = "{{ messages[0].content }} {{ strftime_now('%Y-%m-%d %H:%M') }}"
    t = ChatTemplate(src, name="dated", now=datetime(2024, 7, 26, 9, 30))
    assert t.render(MSGS[1:2]) == "Hi 2024-07-26 09:30"
    assert pickle.loads(pickle.dumps(t)).render(MSGS[1:2]) == "Hi 2024-07-26 09:30"
    assert t.provenance()["template_time"] == "2024-07-26T09:30:00"
    plain = ChatTemplate("{{ messages[0].content }}", name="plain", now=datetime(2024, 7, 26))
    assert "template_time" not in plain.provenance()  # recorded only where it is used
    unset = ChatTemplate(src, name="dated")
    assert unset.render(MSGS[1:2]).startswith(f"Hi {datetime.now():%Y-}")
