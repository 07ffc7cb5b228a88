"""Filters: one line per case, exact reasons, exact trims. Language has its own file."""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import pickle
import re
from concurrent.futures import ProcessPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convkit.errors import ConfigError
from convkit.filters import (
    FILTERS,
    KEEP,
    Dedup,
    Drop,
    FilterChain,
    FilterConfig,
    FilterStats,
    Outcome,
    Part,
    Trim,
    TrimFilter,
    all_reasons,
    build_dedup,
    build_filters,
    content_digest,
    filter_names,
    has_restarted_list,
    normalise_text,
    phrase_pattern,
    register,
)
from convkit.filters.blocked import BlockedPhrase, BlockedResponse
from convkit.filters.content import EmptyTurn, TooShort, UnprintableTurn
from convkit.filters.dedup import DuplicateContent, DuplicateId
from convkit.filters.metadata import Plugins
from convkit.filters.patterns import RepeatedDigits, RestartedList
from convkit.filters.structure import LeadingNonUser, RolesAlternate, TooFewTurns, TrailingUserTurn
from convkit.model import Conversation, Turn

S, U, A, T = "system", "user", "assistant", "tool"


def C(turns, id="c1", **meta):
    """A conversation from ``[(role, content), ...]``; roles may be given as S/U/A/T."""
    return Conversation(id, [Turn(r, c) for r, c in turns], meta=meta)


def R(*roles):
    """A conversation with the given roles and distinct, long enough contents."""
    return C([(r, f"{r} turn number {i}") for i, r in enumerate(roles)])


def check(f, conv):
    """The drop reason a filter gives, or None when it keeps the conversation."""
    v = f.apply(conv)
    assert not isinstance(v, Trim), v
    return v.reason if isinstance(v, Drop) else None


def trim(f, conv):
    v = f.apply(conv)
    assert not isinstance(v, Drop), v
    return list(v.parts) if isinstance(v, Trim) else []


def run(conv, **config):
    return FilterChain(build_filters(FilterConfig(**config))).apply(conv)


def pairs(conv):
    return [(t.role, t.content) for t in conv.turns]


ALL_NAMES = [
    "blocked_phrase", "blocked_response", "duplicate_content", "duplicate_id", "empty_turn",
    "language", "leading_non_user", "plugins", "repeated_digits", "restarted_numbered_list",
    "roles_not_alternating", "too_few_turns", "too_short", "trailing_user_turn",
    "unprintable_turn",
]
DEFAULT_CHAIN = [
    "plugins", "empty_turn", "unprintable_turn", "leading_non_user", "trailing_user_turn",
    "roles_not_alternating", "too_few_turns", "too_short", "blocked_response", "blocked_phrase",
]


# --------------------------------------------------------------------------- structure

def test_leading_non_user():
    assert trim(LeadingNonUser(), R(A, U, A)) == [Part(0, 1, "leading_non_user")]
    assert trim(LeadingNonUser(), R(A, T, U, A)) == [Part(0, 2, "leading_non_user")]
    assert trim(LeadingNonUser(), R(S, A, U, A)) == [Part(1, 2, "leading_non_user")]
    assert trim(LeadingNonUser(), R(S, A, S, U, A)) == [Part(1, 3, "leading_non_user")]
    assert trim(LeadingNonUser(), R(A, A)) == [Part(0, 2, "leading_non_user")]
    assert trim(LeadingNonUser(), R(S, S, U, A)) == []
    assert trim(LeadingNonUser(), R(U, A)) == []
    assert trim(LeadingNonUser(), R()) == []


def test_trailing_user_turn():
    assert trim(TrailingUserTurn(), R(U, A, U)) == [Part(2, 3, "trailing_user_turn")]
    assert trim(TrailingUserTurn(), R(U, A, U, U)) == [Part(2, 4, "trailing_user_turn")]
    assert trim(TrailingUserTurn(), R(U, A, T)) == [Part(2, 3, "trailing_tool_turn")]
    assert trim(TrailingUserTurn(), R(U, A, T, U)) == [
        Part(2, 3, "trailing_tool_turn"), Part(3, 4, "trailing_user_turn")
    ]
    assert trim(TrailingUserTurn(), R(S, U)) == [Part(1, 2, "trailing_user_turn")]
    assert trim(TrailingUserTurn(), R(S)) == []
    assert trim(TrailingUserTurn(), R(U, A)) == []
    assert trim(TrailingUserTurn(), R(U, A, S)) == []  # a late system turn: roles_not_alternating


def test_roles_alternate():
    assert check(RolesAlternate(), R(U, A)) is None
    assert check(RolesAlternate(), R(S, S, U, A, U, A)) is None
    assert check(RolesAlternate(), R(U, A, T, A)) is None
    assert check(RolesAlternate(), R(U, A, T, T, A, U, A)) is None
    assert check(RolesAlternate(), R()) is None  # nothing to judge: too_few_turns decides
    assert check(RolesAlternate(), R(U, U, A)) == "roles_not_alternating"
    assert check(RolesAlternate(), R(U, A, A)) == "roles_not_alternating"
    assert check(RolesAlternate(), R(U, T, A)) == "roles_not_alternating"
    assert check(RolesAlternate(), R(U, A, T, U, A)) == "roles_not_alternating"
    assert check(RolesAlternate(), R(U, A, T)) == "roles_not_alternating"
    assert check(RolesAlternate(), R(U, A, S, U, A)) == "roles_not_alternating"
    assert check(RolesAlternate(), R(A, U, A)) == "roles_not_alternating"
    assert check(RolesAlternate(), R(U)) == "roles_not_alternating"


def test_too_few_turns():
    assert check(TooFewTurns(2), R(U)) == "too_few_turns"
    assert check(TooFewTurns(2), R()) == "too_few_turns"
    assert check(TooFewTurns(2), R(S, U)) == "too_few_turns"
    assert check(TooFewTurns(2), R(S, U, A)) is None
    assert check(TooFewTurns(4), R(S, U, A)) == "too_few_turns"
    assert check(TooFewTurns(4), R(U, A, U, A)) is None


# --------------------------------------------------------------------------- content

def test_empty_turn():
    assert trim(EmptyTurn(), C([(U, "question"), (A, "answer"), (U, "more"), (A, " \n ")])) == [
        Part(3, 4, "empty_turn")
    ]
    assert trim(EmptyTurn(), C([(U, "question"), (A, ""), (U, "more"), (A, "yes")])) == [
        Part(1, 4, "empty_turn")
    ]
    # An empty system prompt goes alone; the exchanges after it stay.
    assert trim(EmptyTurn(), C([(S, ""), (U, "question"), (A, "answer")])) == [
        Part(0, 1, "empty_turn")
    ]
    assert trim(EmptyTurn(), C([(U, "question"), (A, "answer")])) == []


def test_a_turn_that_only_calls_tools_is_not_empty():
    call = {"tool_calls": [{"id": "c1", "type": "function",
                            "function": {"name": "weather", "arguments": "{}"}}]}
    conv = Conversation("t", [
        Turn(U, "Weather in Paris?"), Turn(A, "", call), Turn(T, "18 C", {"tool_call_id": "c1"}),
        Turn(A, "It is 18 C in Paris."),
    ])
    assert trim(EmptyTurn(), conv) == []
    out = run(conv)
    assert out.kept and out.parts == () and out.conv is conv
    legacy = Conversation("t", [Turn(U, "Weather?"), Turn(A, " ", {"function_call": {"name": "w"}}),
                                Turn(T, "18 C"), Turn(A, "18 C.")])
    assert trim(EmptyTurn(), legacy) == []
    # An empty tool_calls list calls nothing: the turn is empty.
    empty = Conversation("t", [Turn(U, "Weather?"), Turn(A, "", {"tool_calls": []}),
                               Turn(U, "Hello?"), Turn(A, "Hi.")])
    assert trim(EmptyTurn(), empty) == [Part(1, 4, "empty_turn")]


def test_a_turn_that_only_shows_an_image_is_not_empty():
    image = {"content_parts": [{"type": "image_url", "image_url": {"url": "http://x/cat.png"}}]}
    conv = Conversation("i", [Turn(U, "", image), Turn(A, "A cat on a mat.")])
    assert trim(EmptyTurn(), conv) == []
    # Text parts alone are text: empty text is empty.
    text_only = {"content_parts": [{"type": "text", "text": " "}]}
    conv = Conversation("t", [Turn(U, "Hi?"), Turn(A, " ", text_only)])
    assert trim(EmptyTurn(), conv) == [Part(1, 2, "empty_turn")]


def test_empty_turn_repeating_the_speaker_goes_alone():
    # The ShareGPT artefact: a question, an empty second "human" message, the answer.
    conv = C([(U, "q1"), (U, ""), (A, "a1"), (U, "q2"), (U, " \n"), (U, ""), (A, "a2")])
    assert trim(EmptyTurn(), conv) == [
        Part(1, 2, "empty_turn"),
        Part(4, 5, "empty_turn"),
        Part(5, 6, "empty_turn"),
    ]
    # A different speaker's empty turn still cuts, repeats before it included.
    conv = C([(U, "q1"), (U, ""), (A, ""), (U, "q2"), (A, "a2")])
    assert trim(EmptyTurn(), conv) == [Part(1, 2, "empty_turn"), Part(2, 5, "empty_turn")]
    # The first turn after the system prompt goes alone too: nothing after it depends on it.
    assert trim(EmptyTurn(), C([(S, "Be brief."), (S, ""), (U, ""), (A, "a"), (U, "q")])) == [
        Part(1, 2, "empty_turn"),
        Part(2, 3, "empty_turn"),
    ]
    assert trim(EmptyTurn(), C([(A, ""), (U, "q"), (A, ""), (U, "q2")])) == [
        Part(0, 1, "empty_turn"),
        Part(2, 4, "empty_turn"),
    ]


def test_empty_turn_before_the_exchanges_begin_goes_alone():
    # Until a good user turn, the structure filters trim what leads anyway.
    conv = C([(A, "hi"), (U, ""), (A, "a"), (U, "a real question"), (A, "a real answer")])
    assert trim(EmptyTurn(), conv) == [Part(1, 2, "empty_turn")]
    out = run(conv)
    assert pairs(out.conv) == [(U, "a real question"), (A, "a real answer")]
    assert out.parts == (Part(0, 1, "leading_non_user"), Part(1, 2, "empty_turn"),
                         Part(2, 3, "leading_non_user"))
    # Once the exchanges have begun, a bad turn of the other speaker still cuts.
    conv = C([(U, ""), (U, "q"), (A, ""), (U, "q2"), (A, "b")])
    assert trim(EmptyTurn(), conv) == [Part(0, 1, "empty_turn"), Part(2, 5, "empty_turn")]


def test_chain_keeps_the_exchanges_around_a_repeated_empty_turn():
    conv = C([(A, "greeting"), (U, "question one"), (U, ""), (A, "answer one"),
              (U, "question two"), (U, "  "), (A, "answer two")])
    out = run(conv)
    assert pairs(out.conv) == [(U, "question one"), (A, "answer one"), (U, "question two"),
                               (A, "answer two")]
    assert out.parts == (Part(0, 1, "leading_non_user"), Part(2, 3, "empty_turn"),
                         Part(5, 6, "empty_turn"))


def test_unprintable_turn():
    def cut(text):
        return trim(UnprintableTurn(), C([(U, "question"), (A, "answer"), (U, "more"), (A, text)]))

    assert cut("\x00abc") == [Part(3, 4, "unprintable_turn")]
    assert cut("\u200bhello") == [Part(3, 4, "unprintable_turn")]  # zero-width space (Cf)
    assert cut("  \x07bell") == [Part(3, 4, "unprintable_turn")]  # first after the white space
    assert cut("\u3000\u200b") == [Part(3, 4, "unprintable_turn")]  # Unicode white space too
    assert cut("\x1c\x1dok") == []  # separators: white space to str.isspace, skipped
    assert cut("hello\x00") == []
    assert cut("\thello") == []
    assert cut("😀 hello") == []
    assert cut("") == []  # empty is empty_turn's business
    assert trim(UnprintableTurn(), C([(S, "\x1b[0m"), (U, "question"), (A, "answer")])) == [
        Part(0, 1, "unprintable_turn")
    ]
    conv = C([(U, "question"), (U, "\x00"), (A, "answer")])
    assert trim(UnprintableTurn(), conv) == [Part(1, 2, "unprintable_turn")]


def test_too_short():
    assert check(TooShort(16), C([(U, "hi"), (A, "hello")])) == "too_short"
    assert check(TooShort(16), C([(U, "12345678"), (A, "1234567")])) == "too_short"  # 15
    assert check(TooShort(16), C([(U, "12345678"), (A, "12345678")])) is None  # 16
    assert check(TooShort(16), C([(U, "hi" + " " * 20), (A, "\n\nyo")])) == "too_short"
    assert check(TooShort(16), C([(S, "long system prompt"), (U, "hi"), (A, "yo")])) == "too_short"
    assert check(TooShort(4), C([(U, "hi"), (A, "yo")])) is None


# --------------------------------------------------------------------------- blocked

def test_blocked_phrase_defaults():
    assert check(BlockedPhrase(), C([(U, "About OpenAI?"), (A, "Sure.")])) == "blocked_phrase"
    assert check(BlockedPhrase(), C([(U, "hi"), (A, "As CHATGPT, I cannot")])) == "blocked_phrase"
    assert check(BlockedPhrase(), C([(U, "hi"), (A, "ChatGPT's answer")])) == "blocked_phrase"
    assert check(BlockedPhrase(), C([(U, "import openai"), (A, "ok")])) == "blocked_phrase"
    assert check(BlockedPhrase(), C([(U, "see openai.com"), (A, "ok")])) == "blocked_phrase"
    assert check(BlockedPhrase(), C([(U, "set OPENAI_API_KEY"), (A, "ok")])) is None  # one word
    assert check(BlockedPhrase(), C([(U, "myopenai"), (A, "chatgpts")])) is None
    assert check(BlockedPhrase(), C([(S, "You are ChatGPT."), (U, "hi"), (A, "ok")])) == (
        "blocked_phrase"
    )


def test_blocked_phrase_word_boundaries():
    palm = BlockedPhrase(["palm"])
    assert check(palm, C([(U, "What is napalm?"), (A, "A weapon.")])) is None
    assert check(palm, C([(U, "Palmyra"), (A, "A city.")])) is None
    assert check(palm, C([(U, "a palm tree"), (A, "yes")])) == "blocked_phrase"
    assert check(palm, C([(U, "(PALM)"), (A, "yes")])) == "blocked_phrase"
    tree = BlockedPhrase(["palm tree"])
    assert check(tree, C([(U, "a palm\n  tree"), (A, "yes")])) == "blocked_phrase"
    assert check(tree, C([(U, "a palm"), (A, "a tree")])) is None
    assert check(tree, C([(U, "palmtree"), (A, "yes")])) is None


def test_blocked_phrase_with_a_capital_matches_as_written():
    # Smart case: "Palm" is the model, "a palm tree" is not.
    palm = BlockedPhrase(["Palm"])
    assert check(palm, C([(U, "Tell me about palm trees in Florida"), (A, "Sure.")])) is None
    assert check(palm, C([(U, "Is Palm 2 better?"), (A, "Maybe.")])) == "blocked_phrase"
    assert check(palm, C([(U, "PALM"), (A, "yes")])) is None
    mixed = BlockedPhrase(["openai", "Bard"])
    assert check(mixed, C([(U, "OpenAI or bard?"), (A, "both")])) == "blocked_phrase"
    assert check(mixed, C([(U, "a bard sang"), (A, "nice")])) is None
    assert check(mixed, C([(U, "ask Bard"), (A, "ok")])) == "blocked_phrase"
    v = mixed.apply(C([(U, "ask Bard"), (A, "ok")]))
    assert v.detail == "matched 'Bard' in a turn of role user"
    # Non-ASCII phrases take the regex alone (no pre-test); the rule is the same.
    cafe = BlockedPhrase(["Café"])
    assert check(cafe, C([(U, "un café"), (A, "oui")])) is None
    assert check(cafe, C([(U, "Café Flore"), (A, "oui")])) == "blocked_phrase"


def test_blocked_phrase_ignores_link_and_image_destinations():
    # The page's href and src became markdown destinations: not text anyone wrote.
    for text in [
        "See [the docs](https://platform.openai.com/docs).",
        '![a cat](https://cdn.openai.com/cat.png "cat")',
        "[wiki](https://en.wikipedia.org/wiki/OpenAI_(company))",
        "[spaced](<https://openai.com/a b>)",
    ]:
        assert check(BlockedPhrase(), C([(U, "links?"), (A, text)])) is None, text
    # Link text, autolinks and bare URLs are what the reader sees.
    for text in [
        "[OpenAI's docs](https://example.org)",
        "<https://openai.com>",
        "go to https://openai.com now",
        "[a](https://example.org) and openai",
    ]:
        assert check(BlockedPhrase(), C([(U, "links?"), (A, text)])) == "blocked_phrase", text


def test_blocked_phrase_is_escaped():
    gpt = BlockedPhrase(["GPT-3.5"])
    assert check(gpt, C([(U, "GPT-3x5"), (A, "no")])) is None
    assert check(gpt, C([(U, "GPT-305"), (A, "no")])) is None
    assert check(gpt, C([(U, "I use GPT-3.5."), (A, "ok")])) == "blocked_phrase"
    assert check(gpt, C([(U, "I use gpt-3.5."), (A, "ok")])) is None  # a capital: as written
    assert check(BlockedPhrase(["gpt-3.5"]), C([(U, "I use GPT-3.5."), (A, "ok")])) == (
        "blocked_phrase"
    )
    assert check(gpt, C([(U, "GPT-3.5-turbo"), (A, "ok")])) == "blocked_phrase"
    assert check(gpt, C([(U, "GPT-3.50"), (A, "ok")])) is None
    cpp = BlockedPhrase(["C++"])
    assert check(cpp, C([(U, "I love C++."), (A, "ok")])) == "blocked_phrase"
    assert check(cpp, C([(U, "ABC++ and C++x"), (A, "ok")])) is None
    assert check(BlockedPhrase(["a.b"]), C([(U, "axb"), (A, "ok")])) is None
    assert phrase_pattern(["GPT-3.5", "palm tree"]).pattern == (
        r"(?<!\w)(?:GPT\-3\.5|(?i:palm\s+tree))(?!\w)"
    )


def test_blocked_phrase_roles():
    user_only = BlockedPhrase(["openai"], roles=["user"])
    assert check(user_only, C([(U, "hi"), (A, "OpenAI made me")])) is None
    assert check(user_only, C([(U, "OpenAI?"), (A, "yes")])) == "blocked_phrase"
    # The default roles leave tool output alone (API responses name their vendor).
    assert check(BlockedPhrase(), C([(U, "q"), (A, "c"), (T, "openai: 42"), (A, "42")])) is None
    assert check(BlockedPhrase(roles=[T]), C([(U, "q"), (A, "c"), (T, "openai"), (A, "4")])) == (
        "blocked_phrase"
    )


def test_blocked_phrase_sees_converted_text_only():
    raw = {"id": "c1", "conversations": [
        {"from": "human", "value": "Hello there"},
        {"from": "gpt", "value": '<div class="markdown prose openai-text chatgpt">Hi!</div>'},
    ]}
    conv = Conversation("c1", [Turn(U, "Hello there"), Turn(A, "Hi!", meta={"class": "openai"})],
                        raw=raw)
    assert check(BlockedPhrase(), conv) is None


def test_blocked_phrase_detail():
    v = BlockedPhrase().apply(C([(U, "hi"), (A, "I am ChatGPT")]))
    assert v == Drop("blocked_phrase", "matched 'ChatGPT' in a turn of role assistant")


def test_phrase_pattern_errors():
    with pytest.raises(ConfigError, match=r"^expected blocked phrases to be non-empty, got ' '$"):
        phrase_pattern(["openai", " "])
    with pytest.raises(ConfigError, match=r"^expected at least one blocked phrase$"):
        phrase_pattern([])


def test_blocked_response():
    msg = "Too many requests in 1 hour. Try again later."
    assert check(BlockedResponse(), C([(U, "hi there"), (A, msg)])) == "blocked_response"
    assert check(BlockedResponse(), C([(U, "hi there"), (A, "!" + msg)])) == "blocked_response"
    assert check(BlockedResponse(), C([(U, "hi there"), (A, "! " + msg)])) == "blocked_response"
    assert check(BlockedResponse(), C([(U, "hi"), (A, "  \n" + msg + " More.")])) == (
        "blocked_response"
    )
    assert check(BlockedResponse(), C([(U, msg), (A, "I see.")])) is None  # user turns are fine
    assert check(BlockedResponse(), C([(U, "hi"), (A, "It said: " + msg)])) is None
    assert check(BlockedResponse(), C([(U, "hi"), (A, msg.lower())])) is None
    assert check(BlockedResponse(["Network error"]), C([(U, "hi"), (A, "Network error!")])) == (
        "blocked_response"
    )
    assert check(BlockedResponse(["Network error"]), C([(U, "hi"), (A, msg)])) is None


# --------------------------------------------------------------------------- patterns, plugins

def test_repeated_digits():
    assert check(RepeatedDigits(), C([(U, "q"), (A, "0.000000000")])) == "repeated_digits"
    assert check(RepeatedDigits(), C([(U, "q"), (A, "0.00000000")])) is None  # 8
    assert check(RepeatedDigits(), C([(U, "q"), (A, "0123456789" * 3)])) is None
    assert check(RepeatedDigits(), C([(U, "\u0663" * 9), (A, "a")])) == "repeated_digits"
    assert check(RepeatedDigits(3), C([(U, "q"), (A, "x111y")])) == "repeated_digits"
    assert check(RepeatedDigits(3), C([(U, "q"), (A, "x11y")])) is None


def test_restarted_list():
    assert has_restarted_list("Steps:\n1. one\n1. one again")
    assert has_restarted_list("\n1. a\n2. b\n1. c\n1. d")
    assert not has_restarted_list("\n1. a\n2. b\n1. c")
    assert not has_restarted_list("\n1. a, see item 2\n1. b")
    assert has_restarted_list("1. a\n1. b")  # FastChat's regex misses a list opening the turn
    assert not has_restarted_list("1. a\n2. b\n1. c")
    assert not has_restarted_list("11. a\n1. b")
    assert not has_restarted_list("\n1. a\n10. b")
    assert check(RestartedList(), C([(U, "q"), (A, "x\n1. a\n1. b")])) == "restarted_numbered_list"
    assert check(RestartedList(), C([(U, "q"), (A, "x\n1. a\n2. b")])) is None


FASTCHAT_LIST = re.compile(r"\n1\. [^2]*\n1\. ")


@given(st.lists(st.sampled_from(["\n", "1", ".", " ", "2", "a", "\n1. "]), max_size=30))
def test_restarted_list_agrees_with_fastchat_regex_where_a_new_line_starts_the_text(pieces):
    text = "".join(pieces)
    assert has_restarted_list(text) == (FASTCHAT_LIST.search("\n" + text) is not None)


def test_plugins():
    assert check(Plugins(), C([(U, "q"), (A, "a")], plugins=["wolfram"])) == "uses_plugins"
    assert check(Plugins(), C([(U, "q"), (A, "a")], plugins={"ids": ["x"]})) == "uses_plugins"
    assert check(Plugins(), C([(U, "q"), (A, "a")], plugins="wolfram")) == "uses_plugins"
    assert check(Plugins(), C([(U, "q"), (A, "a")], plugins=None)) is None
    assert check(Plugins(), C([(U, "q"), (A, "a")], plugins=[])) is None
    assert check(Plugins(), C([(U, "q"), (A, "a")])) is None


# --------------------------------------------------------------------------- the chain

GREETING = "Hello! How can I help you today?"


def test_chain_trims_both_ends_and_keeps_content():
    conv = C([(A, GREETING), (U, "What is 1 / 2 cup of flour in grams?"),
              (A, "1 / 2 cup of flour is about 60 grams."), (U, "thanks")])
    out = run(conv)
    assert out == Outcome(out.conv, None, (Part(0, 1, "leading_non_user"),
                                           Part(3, 4, "trailing_user_turn")))
    assert pairs(out.conv) == [(U, "What is 1 / 2 cup of flour in grams?"),
                               (A, "1 / 2 cup of flour is about 60 grams.")]
    assert len(conv.turns) == 4  # the conversation as it arrived is left alone
    assert out.conv.turns[0] is conv.turns[1]


def test_chain_keeps_the_same_object_when_nothing_is_trimmed():
    conv = C([(U, "What is the capital of France?"), (A, "Paris.")])
    out = run(conv)
    assert out.kept and out.conv is conv and out.parts == ()


def test_chain_cut_then_trailing_trim_again():
    conv = C([(U, "first question here"), (A, "first answer here"), (U, "second question"),
              (A, ""), (U, "hello?")])
    out = run(conv)
    assert pairs(out.conv) == [(U, "first question here"), (A, "first answer here")]
    assert out.parts == (Part(2, 3, "trailing_user_turn"), Part(3, 5, "empty_turn"))


def test_chain_parts_index_the_conversation_as_it_arrived():
    conv = C([(S, "Be brief."), (A, GREETING), (U, "question one"), (A, "answer one"),
              (U, "question two"), (A, "\x00garbage")])
    out = run(conv)
    assert pairs(out.conv) == [(S, "Be brief."), (U, "question one"), (A, "answer one")]
    assert out.parts == (Part(1, 2, "leading_non_user"), Part(4, 5, "trailing_user_turn"),
                         Part(5, 6, "unprintable_turn"))
    # Every turn that arrived is either written or in exactly one part.
    written = {id(t) for t in out.conv.turns}
    trimmed = [i for p in out.parts for i in range(p.start, p.end)]
    assert sorted(trimmed + [i for i, t in enumerate(conv.turns) if id(t) in written]) == list(
        range(6)
    )


class _DropMiddle(TrimFilter):
    """A test filter removing the current turns [1, 3), to test index translation."""

    name = "drop_middle"

    def trim(self, conv):
        return [Part(1, 3, "middle")] if len(conv.turns) >= 4 else []


def test_chain_splits_a_part_that_spans_an_earlier_trim():
    conv = R(S, A, U, A, U, A)  # leading_non_user removes 1; then [1, 3) now is 2..3 on arrival
    chain = FilterChain([LeadingNonUser(), _DropMiddle()])
    out = chain.apply(conv)
    assert out.parts == (Part(1, 2, "leading_non_user"), Part(2, 4, "middle"))
    conv = R(S, U, A, U, A, U, A)
    chain = FilterChain([EmptyTurn(), _DropMiddle(), _DropMiddle()])
    out = chain.apply(conv)
    assert out.parts == (Part(1, 5, "middle"),)  # adjacent parts with one reason are joined
    assert [t.content for t in out.conv.turns] == ["system turn number 0",
                                                   "user turn number 5", "assistant turn number 6"]


class _BadPart(TrimFilter):
    name = "bad_part"

    def trim(self, conv):
        return [Part(0, 9, "oops")]


def test_chain_rejects_a_bad_part():
    with pytest.raises(RuntimeError, match=r"^filter 'bad_part' returned a bad part "
                                           r"Part\(start=0, end=9, reason='oops'\) for 2 turns$"):
        FilterChain([_BadPart()]).apply(R(U, A))


def test_chain_drop_reports_earlier_trims_in_the_detail():
    conv = C([(A, GREETING), (U, "hi"), (A, "I am ChatGPT, a model."), (U, "ok")])
    assert run(conv) == Outcome(
        None, "blocked_phrase", (),
        "matched 'ChatGPT' in a turn of role assistant; after trimming turn 0 (leading_non_user), "
        "turn 3 (trailing_user_turn)",
    )


def test_chain_drops_what_trimming_empties():
    assert run(C([(A, GREETING), (A, "Anything else?")])) == Outcome(
        None, "too_few_turns", (), "after trimming turns 0-1 (leading_non_user)"
    )
    assert run(C([(A, GREETING)]), disabled={"too_few_turns", "too_short"}) == Outcome(
        None, "no_turns_left", (), "after trimming turn 0 (leading_non_user)"
    )
    assert run(C([(S, "prompt"), (U, "unanswered question")]), min_turns=0, min_chars=0) == Outcome(
        None, "no_turns_left", (), "after trimming turn 1 (trailing_user_turn)"
    )


@pytest.mark.parametrize(
    ("turns", "reason"),
    [
        ([], "too_few_turns"),
        ([(U, "a lonely question")], "too_few_turns"),
        ([(U, "hi"), (A, "hey")], "too_short"),
        ([(U, "question one"), (U, "question two"), (A, "answer")], "roles_not_alternating"),
        ([(U, "Is ChatGPT free?"), (A, "Yes, mostly.")], "blocked_phrase"),
        ([(U, "some question"), (A, "Too many requests in 1 hour. Try again later.")],
         "blocked_response"),
        ([(U, ""), (A, "an answer to nothing")], "too_few_turns"),
    ],
)
def test_chain_default_drops(turns, reason):
    assert run(C(turns)).reason == reason


def test_chain_plugins_first():
    conv = C([(U, "hi")], plugins=["web"])
    assert run(conv) == Outcome(None, "uses_plugins")
    assert run(conv, disabled={"plugins"}).reason == "too_few_turns"


@pytest.mark.parametrize(
    ("config", "turns", "reason"),
    [
        ({}, [(U, "What is napalm?"), (A, "An incendiary mixture.")], None),
        ({"blocked_phrases": ["napalm"]}, [(U, "What is napalm?"), (A, "A mixture.")],
         "blocked_phrase"),
        ({"blocked_phrases": []}, [(U, "Is ChatGPT free?"), (A, "Yes, mostly.")], None),
        ({"blocked_roles": ["user"]}, [(U, "Hello there you"), (A, "I am ChatGPT.")], None),
        ({"blocked_roles": []}, [(U, "Is ChatGPT free?"), (A, "Yes, mostly.")], None),
        ({"disabled": ["blocked_phrase"]}, [(U, "Is ChatGPT free?"), (A, "Yes, mostly.")], None),
        ({"blocked_responses": []}, [(U, "a question"), (A, "Too many requests in 1 hour.")],
         None),
        ({"blocked_responses": ["Sorry"]}, [(U, "a question"), (A, "Sorry, I can't.")],
         "blocked_response"),
        ({"min_turns": 4}, [(U, "a question"), (A, "an answer to it")], "too_few_turns"),
        ({"min_turns": 1, "min_chars": 0}, [(U, "hi"), (A, "yo")], None),
        ({"min_chars": 100}, [(U, "a question"), (A, "an answer to it")], "too_short"),
        ({"disabled": ["too_short"]}, [(U, "hi"), (A, "yo")], None),
        ({"repeated_digits": 9}, [(U, "a question"), (A, "pi is 3.1111111111")],
         "repeated_digits"),
        ({}, [(U, "a question"), (A, "pi is 3.1111111111")], None),
        ({"restarted_lists": True}, [(U, "a question"), (A, "x\n1. a\n1. b")],
         "restarted_numbered_list"),
        ({}, [(U, "a question"), (A, "x\n1. a\n1. b")], None),
        ({"disabled": ["roles_not_alternating"]}, [(U, "q one"), (U, "q two"), (A, "answer")],
         None),
    ],
)
def test_chain_knobs(config, turns, reason):
    assert run(C(turns), **config).reason == reason


def test_chain_knobs_trims_off():
    conv = C([(A, GREETING), (U, "a question"), (A, "an answer"), (U, "and?")])
    out = run(conv, disabled={"leading_non_user", "trailing_user_turn",
                              "roles_not_alternating"})
    assert out.conv is conv
    out = run(C([(U, "a question"), (A, "an answer"), (U, ""), (A, "x")]),
              disabled={"empty_turn"})
    assert out.kept and out.parts == ()
    out = run(C([(U, "a question"), (A, "an answer"), (U, "\x00"), (A, "x")]),
              disabled={"unprintable_turn"})
    assert out.kept and out.parts == ()


# --------------------------------------------------------------------------- stats

def test_stats_and_merge():
    chain = FilterChain(build_filters())
    for turns in (
        [(U, "What is the capital of France?"), (A, "Paris.")],
        [(A, GREETING), (U, "What is the capital of Spain?"), (A, "Madrid."), (U, "ok")],
        [(U, "hi"), (A, "yo")],
        [(U, "Is ChatGPT free?"), (A, "Yes, mostly.")],
    ):
        chain.apply(C(turns))
    assert dict(chain.stats) == {
        "total": 4, "kept": 2, "dropped_too_short": 1, "dropped_blocked_phrase": 1,
        "trimmed_leading_non_user": 1, "trimmed_trailing_user_turn": 1,
    }
    other = FilterStats({"total": 3, "kept": 1, "dropped_too_short": 2})
    merged = FilterStats().merge(chain.stats).merge(other)
    assert dict(merged) == {
        "total": 7, "kept": 3, "dropped_too_short": 3, "dropped_blocked_phrase": 1,
        "trimmed_leading_non_user": 1, "trimmed_trailing_user_turn": 1,
    }
    assert merged["total"] == merged["kept"] + sum(
        v for k, v in merged.items() if k.startswith("dropped_")
    )


def test_stats_followed_by():
    chain = FilterStats({"total": 10, "kept": 7, "dropped_too_short": 3, "trimmed_empty_turn": 2})
    dedup = FilterStats({"total": 7, "kept": 5, "dropped_duplicate_id": 2})
    assert dict(chain.followed_by(dedup)) == {
        "total": 10, "kept": 5, "dropped_too_short": 3, "dropped_duplicate_id": 2,
        "trimmed_empty_turn": 2,
    }


def test_trimmed_counts_turns_of_kept_conversations_only():
    chain = FilterChain(build_filters())
    chain.apply(C([(U, "a question here"), (A, "an answer here"), (U, "q"), (U, "q"), (U, "q")]))
    chain.apply(C([(A, GREETING), (U, "hi")]))  # trimmed, then dropped: counted as dropped
    assert dict(chain.stats) == {"total": 2, "kept": 1, "dropped_too_few_turns": 1,
                                 "trimmed_trailing_user_turn": 3}


# --------------------------------------------------------------------------- dedup

def test_normalise_text():
    assert normalise_text("  a \n\t b\u00a0 c  ") == "a b c"
    assert normalise_text("Case Kept") == "Case Kept"


HASHED = C([(S, "Be brief."), (U, "What is 1 / 2 cup in grams?"), (A, "About  120 g.\n")])


def test_blocked_phrase_sees_the_dotless_i_as_the_regex_does():
    # re's ignore-case pairs "ı" with "i" while no case folding does: the pretest must not hide
    # the match from the regex.
    f = BlockedPhrase()
    assert f.pattern.search("Is OpenAı good?")
    assert f.apply(C([(U, "Is OpenAı good?"), (A, "Yes, it is.")])) == Drop(
        "blocked_phrase", "matched 'OpenAı' in a turn of role user"
    )


def test_only_the_dotless_i_is_matched_by_ignore_case_beyond_case_folding():
    import re

    letters = "abcdefghijklmnopqrstuvwxyz"
    pattern = re.compile(f"[{letters}]", re.IGNORECASE)
    found = [
        chr(c) for c in range(0x80, 0x110000)
        if 0xD800 > c or c > 0xDFFF
        if pattern.fullmatch(chr(c)) and not any(x in letters for x in chr(c).casefold())
    ]
    assert found == ["\u0131"]


def test_content_digest_is_a_fixed_sha256_prefix():
    h = hashlib.sha256()
    for role, text in (("system", "Be brief."), ("user", "What is 1 / 2 cup in grams?"),
                       ("assistant", "About 120 g.")):
        h.update(len(role).to_bytes(8, "big") + role.encode())
        h.update((32).to_bytes(8, "big") + hashlib.sha256(text.encode()).digest())
    assert content_digest(HASHED) == h.digest()[:16]


def test_content_digest_what_counts():
    base = content_digest(C([(U, "a b"), (A, "c")]))
    assert content_digest(C([(U, "  a\n\nb "), (A, "c\n")])) == base  # white space aside
    assert content_digest(C([(U, "A b"), (A, "c")])) != base  # case counts
    assert content_digest(C([(A, "a b"), (U, "c")])) != base  # roles count
    assert content_digest(C([(U, "a"), (A, "b c")])) != base  # turn boundaries count
    assert content_digest(C([(U, "a b"), (A, "c"), (U, "d"), (A, "e")])) != base  # all turns
    assert content_digest(C([(U, "a b"), (A, "c")], id="other", model="x")) == base
    assert content_digest(C([(U, "\ud800"), (A, "c")])) != base  # lone surrogates hash too


def test_content_digest_counts_images_and_tool_calls_but_not_call_ids():
    def image(url, **meta):
        parts = [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": url}},
        ]
        turn = Turn(U, "What is this?", {"content_parts": parts, **meta})
        return Conversation("c", [turn, Turn(A, "A cat.")])

    def call(city, call_id):
        fn = {"name": "weather", "arguments": f'{{"city": "{city}"}}'}
        calls = [{"id": call_id, "type": "function", "function": fn}]
        turns = [Turn(U, "Weather?"), Turn(A, "", {"tool_calls": calls}), Turn(A, "Sunny.")]
        return Conversation("c", turns)

    text_only = content_digest(C([(U, "What is this?"), (A, "A cat.")]))
    a, b = content_digest(image("http://x/a.png")), content_digest(image("http://x/b.png"))
    assert len({text_only, a, b}) == 3
    assert content_digest(image("http://x/a.png", name="alice")) == a  # other turn keys aside
    assert content_digest(call("Paris", "call_1")) == content_digest(call("Paris", "call_2"))
    assert content_digest(call("Paris", "call_1")) != content_digest(call("Rome", "call_1"))
    # The encoding, exactly: the top bit of the digest's length announces the extras.
    parts = [{"type": "text", "text": "q"}, {"type": "image_url", "image_url": {"url": "u"}}]
    conv = Conversation("c", [Turn(U, "q", {"content_parts": parts})])
    extras = b'{"calls":null,"media":[{"image_url":{"url":"u"},"type":"image_url"}]}'
    h = hashlib.sha256()
    h.update((4).to_bytes(8, "big") + b"user" + (32 | 1 << 63).to_bytes(8, "big"))
    h.update(hashlib.sha256(b"q").digest())
    h.update(len(extras).to_bytes(8, "big") + extras)
    assert content_digest(conv) == h.digest()[:16]


def test_content_digest_takes_tool_call_arguments_as_deep_as_the_reader_does():
    args: dict = {}
    for _ in range(1000):
        args = {"a": args}
    calls = [{"id": "x", "type": "function", "function": {"name": "f", "arguments": args}}]
    conv = Conversation("c", [Turn(U, "Go."), Turn(A, "", {"tool_calls": calls})])
    assert len(content_digest(conv)) == 16


def test_dedup_sequence():
    dedup = build_dedup()
    x = [(U, "What is the capital of France?"), (A, "Paris.")]
    y = [(U, "What is the capital of Spain?"), (A, "Madrid.")]
    z = [(U, "What is the capital of Italy?"), (A, "Rome.")]
    outcomes = [dedup.apply(c) for c in (
        C(x, id="a"),
        C(x, id="b"),                                    # same content, new id
        C(y, id="a"),                                    # same id, new content
        C(y, id="c"),                                    # y was never kept: kept now
        C(z, id="b"),                                    # b was never kept: kept now
        C([(U, " What is the capital\nof France? "), (A, "Paris.")], id="d"),
        C(x, id="a"),                                    # both repeated: the id is reported
    )]
    assert [(o.reason, o.detail) for o in outcomes] == [
        (None, None),
        ("duplicate_content", "same as 'a'"),
        ("duplicate_id", None),
        (None, None),
        (None, None),
        ("duplicate_content", "same as 'a'"),
        ("duplicate_id", None),
    ]
    assert dict(dedup.stats) == {"total": 7, "kept": 3, "dropped_duplicate_content": 2,
                                 "dropped_duplicate_id": 2}


def test_dedup_keys_computed_elsewhere_checked_in_order():
    worker = build_dedup()  # a copy in a worker only computes keys; its state stays empty
    main = build_dedup()
    convs = [C([(U, "same question"), (A, "same answer")], id=i) for i in ("a", "b", "a")]
    keys = [worker.keys(c) for c in convs]
    assert keys[0] == ("a", content_digest(convs[0]))
    assert [main.check_keys(c.id, k) for c, k in zip(convs, keys, strict=True)] == [
        None, Drop("duplicate_content", "same as 'a'"), Drop("duplicate_id")
    ]
    assert dict(main.stats) == {"total": 3, "kept": 1, "dropped_duplicate_content": 1,
                                "dropped_duplicate_id": 1}
    assert all(not f.seen for f in worker.filters)


def test_dedup_uses_all_turns_not_the_first_exchange():
    dedup = build_dedup()
    first = [(U, "Tell me a joke"), (A, "Why did the chicken cross the road?")]
    assert dedup.apply(C([*first, (U, "Why?"), (A, "To get to the other side.")], id="1")).kept
    assert dedup.apply(C([*first, (U, "Another"), (A, "Knock knock.")], id="2")).kept


def test_dedup_knobs():
    assert [f.name for f in build_dedup().filters] == ["duplicate_id", "duplicate_content"]
    dedup = build_dedup({"disabled": ["duplicate_id"]})
    assert [f.name for f in dedup.filters] == ["duplicate_content"]
    assert dedup.apply(R(U, A)).kept
    assert dedup.apply(C([(U, "other"), (A, "content")])).kept  # same id "c1", kept
    dedup = build_dedup({"disabled": ["duplicate_content"]})
    assert dedup.apply(C([(U, "same"), (A, "text")], id="1")).kept
    assert dedup.apply(C([(U, "same"), (A, "text")], id="2")).kept
    assert build_dedup({"disabled": ["duplicate_id", "duplicate_content"]}).apply(R(U, A)).kept


def test_key_filter_on_its_own():
    f = DuplicateId()
    assert f.apply(R(U, A)) is KEEP
    assert f.apply(R(U, A)) == Drop("duplicate_id")
    g = DuplicateContent()
    assert g.apply(C([(U, "q"), (A, "a")], id="x")) is KEEP
    assert g.apply(C([(U, "q"), (A, "a")], id="y")) == Drop("duplicate_content", "same as 'x'")
    assert repr(g) == "DuplicateContent(<1 seen>)"


def test_chain_and_dedup_refuse_the_wrong_filters():
    with pytest.raises(ConfigError, match=r"^filter 'duplicate_id' keeps state across "
                                          r"conversations; run it with Dedup in the main "
                                          r"process, not in a FilterChain$"):
        FilterChain([DuplicateId()])
    with pytest.raises(ConfigError, match=r"^filter 'too_short' is not a key filter; "
                                          r"put it in a FilterChain$"):
        Dedup([TooShort()])


# --------------------------------------------------------------------------- registry and config

def test_registry():
    assert filter_names() == ALL_NAMES
    assert sorted(FILTERS) == ALL_NAMES
    assert [f.name for f in build_filters()] == DEFAULT_CHAIN
    assert [f.name for f in build_filters({})] == DEFAULT_CHAIN
    assert [f.name for f in build_filters(FilterConfig(
        repeated_digits=9, restarted_lists=True, disabled={"plugins", "too_short"}
    ))] == [n for n in DEFAULT_CHAIN if n not in ("plugins", "too_short")] + [
        "repeated_digits", "restarted_numbered_list"
    ]
    assert FilterChain.from_config().filters == tuple(build_filters())
    assert sorted(all_reasons()) == [
        "blocked_phrase", "blocked_response", "duplicate_content", "duplicate_id", "empty_turn",
        "language_not_kept", "language_skipped", "leading_non_user", "no_turns_left",
        "repeated_digits", "restarted_numbered_list", "roles_not_alternating", "too_few_turns",
        "too_short", "trailing_tool_turn", "trailing_user_turn", "unprintable_turn",
        "uses_plugins",
    ]
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", r) for r in all_reasons())


def test_register_twice_or_nameless():
    with pytest.raises(RuntimeError, match=r"^filter name 'too_short' registered twice$"):
        register(type("Again", (TooShort,), {}))
    with pytest.raises(RuntimeError, match=r"^filter class Nameless has no name$"):
        register(type("Nameless", (TrimFilter,), {"name": ""}))


def test_config_defaults_follow_fastchat():
    cfg = FilterConfig()
    assert cfg.disabled == frozenset()
    assert (cfg.min_turns, cfg.min_chars) == (2, 16)
    assert cfg.blocked_phrases == ("openai", "chatgpt")
    assert cfg.blocked_roles == ("user", "assistant", "system")
    assert cfg.blocked_responses == ("Too many requests in 1 hour. Try again later.",)
    assert (cfg.repeated_digits, cfg.restarted_lists) == (None, False)
    assert (cfg.language_keep, cfg.language_skip) == (None, None)


def test_config_normalises():
    cfg = FilterConfig.from_dict({"disabled": ["plugins"], "blocked_phrases": ["a", "b"],
                                  "language_skip": [" KO "]})
    assert cfg == FilterConfig(disabled=frozenset({"plugins"}), blocked_phrases=("a", "b"),
                               language_skip=("ko",))


KNOWN = ", ".join(ALL_NAMES)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"disabled": ["nope"]}, f"unknown filter 'nope'; known: {KNOWN}"),
        ({"disabled": ["too_short", "b", "a"]}, f"unknown filter 'a'; known: {KNOWN}"),
        ({"disabled": "plugins"}, "expected disabled to be a list of strings, got str"),
        ({"disabled": [1]}, "expected disabled to be a list of strings, got an item 1"),
        ({"min_turns": -1}, "expected min_turns to be a non-negative integer, got -1"),
        ({"min_turns": True}, "expected min_turns to be a non-negative integer, got True"),
        ({"min_chars": "16"}, "expected min_chars to be a non-negative integer, got '16'"),
        ({"blocked_phrases": ["ok", "  "]},
         "expected blocked_phrases to hold non-empty strings, got '  '"),
        ({"blocked_responses": [""]},
         "expected blocked_responses to hold non-empty strings, got ''"),
        ({"blocked_roles": ["human"]},
         "unknown role 'human' in blocked_roles; known: assistant, system, tool, user"),
        ({"repeated_digits": 1},
         "expected repeated_digits to be None or an integer of at least 2, got 1"),
        ({"repeated_digits": True},
         "expected repeated_digits to be None or an integer of at least 2, got True"),
        ({"restarted_lists": "yes"}, "expected restarted_lists to be true or false, got 'yes'"),
        ({"language_keep": []},
         "expected language_keep to be None or a list of language codes, got []"),
        ({"language_skip": ["en", " "]},
         "expected language_skip to be None or a list of language codes, got ['en', '']"),
        ({"language_keep": "en"}, "expected language_keep to be a list of strings, got str"),
        ({"max_turns": 3}, "unknown filter option 'max_turns'; known: disabled, min_turns, "
         "min_chars, blocked_phrases, blocked_roles, blocked_responses, repeated_digits, "
         "restarted_lists, language_keep, language_skip"),
    ],
)
def test_config_errors(values, message):
    with pytest.raises(ConfigError) as e:
        FilterConfig.from_dict(values)
    assert str(e.value) == message


def test_build_from_something_else():
    with pytest.raises(ConfigError) as e:
        build_filters(["plugins"])  # type: ignore[arg-type]
    assert str(e.value) == "expected a FilterConfig or a dict, got list"


# --------------------------------------------------------------------------- pickling

SAMPLES = [
    C([(A, GREETING), (U, "What is 1 / 2 cup of flour in grams?"), (A, "About 60 g."),
       (U, "ok")]),
    C([(U, "Is ChatGPT free?"), (A, "Yes, mostly.")]),
    C([(U, "first question here"), (A, "first answer here"), (U, "second"), (A, "")]),
    C([(U, "hi"), (A, "yo")]),
    C([(U, "a question"), (A, "pi is 3.1111111111\n1. a\n1. b")]),
]


def test_filters_config_and_chain_pickle():
    cfg = FilterConfig(repeated_digits=9, restarted_lists=True, blocked_phrases=("GPT-3.5",))
    chain = FilterChain(build_filters(cfg))
    copy = pickle.loads(pickle.dumps(chain))
    assert copy.filters == chain.filters
    assert [copy.apply(c) for c in SAMPLES] == [chain.apply(c) for c in SAMPLES]
    assert copy.stats == FilterStats({"total": 5, "kept": 3, "dropped_too_short": 1,
                                      "dropped_repeated_digits": 1,
                                      "trimmed_leading_non_user": 1,
                                      "trimmed_trailing_user_turn": 2, "trimmed_empty_turn": 1})
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    assert pickle.loads(pickle.dumps(chain.stats)) == chain.stats
    assert type(pickle.loads(pickle.dumps(chain.stats))) is FilterStats


def test_dedup_pickles_with_its_state():
    dedup = build_dedup()
    dedup.apply(R(U, A))
    copy = pickle.loads(pickle.dumps(dedup))
    assert copy.apply(R(U, A)).reason == "duplicate_id"


def test_chain_in_spawned_worker_processes():
    chain = FilterChain(build_filters(FilterConfig(repeated_digits=9)))
    expected = [chain.apply(c) for c in SAMPLES]
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        got = list(pool.map(chain.apply, SAMPLES))
    assert got == expected


# --------------------------------------------------------------------------- properties

ROLE = st.sampled_from([S, U, A, T])
CONTENT = st.sampled_from(["", "  ", "\x00x", "a question of some length", "an answer, ok",
                           "ChatGPT", "hi"])


@given(st.lists(st.tuples(ROLE, CONTENT), max_size=8))
def test_every_turn_is_kept_or_in_one_part(turns):
    conv = C(turns)
    out = FilterChain(build_filters()).apply(conv)
    if not out.kept:
        assert out.conv is None and out.parts == () and out.reason in all_reasons()
        return
    starts = [p.start for p in out.parts]
    assert starts == sorted(starts)
    assert all(a.end <= b.start for a, b in zip(out.parts, out.parts[1:], strict=False))
    trimmed = {i for p in out.parts for i in range(p.start, p.end)}
    remaining = [t for i, t in enumerate(conv.turns) if i not in trimmed]
    assert len(trimmed) == sum(p.end - p.start for p in out.parts)
    assert [id(t) for t in remaining] == [id(t) for t in out.conv.turns]
    assert check(RolesAlternate(), out.conv) is None
    assert out.conv.turns[-1].role == A


@given(st.lists(st.tuples(ROLE, CONTENT), max_size=8))
def test_the_chain_is_idempotent(turns):
    chain = FilterChain(build_filters())
    out = chain.apply(C(turns))
    if out.kept:
        again = chain.apply(out.conv)
        assert again.conv is out.conv and again.parts == ()


_TRICKY = st.text(alphabet=st.sampled_from(list("openaichatgptOPENAICHATGPT _-.\n") + ["ſ", "İ", "K", "ß", "é", "ﬁ"]), max_size=40)


@settings(max_examples=400, deadline=None)
@given(_TRICKY)
def test_blocked_phrase_prefilter_never_changes_the_verdict(text):
    from convkit.filters.blocked import BlockedPhrase
    from convkit.model import Conversation, Turn

    f = BlockedPhrase()
    blocked = f.check(Conversation("x", [Turn("user", text)])) is not None
    assert blocked == (f.pattern.search(text) is not None)


@given(st.text(alphabet=st.sampled_from(" \t\n\x0b\x1c\x85\xa0\u2028\u3000\x00\x07\u200ba😀é")))
@settings(max_examples=300, deadline=None)
def test_bad_turn_tests_agree_with_their_strip_definitions(text):
    assert EmptyTurn().bad(text) == (not text.strip())
    stripped = text.strip()
    assert UnprintableTurn().bad(text) == (bool(stripped) and not stripped[0].isprintable())


def test_an_empty_dedup_still_counts():
    from convkit.filters.base import Dedup

    d = Dedup([])
    assert d.keys(C([(U, "q"), (A, "a")])) == ()
    assert d.check_keys("x", ()) is None
    assert d.stats == FilterStats({"total": 1, "kept": 1})


def test_with_turns_is_replace():
    import dataclasses

    conv = C([(U, "q"), (A, "a")], id="x", model="m")
    turns = conv.turns[:1]
    assert conv.with_turns(turns) == dataclasses.replace(conv, turns=turns)
    assert [f.name for f in dataclasses.fields(conv)] == [
        "id", "turns", "meta", "source", "raw", "scraped"
    ]


# --------------------------------------------------------------------------- shapes

_SHAPE_FILTERS = ["empty_turn", "unprintable_turn", "leading_non_user", "trailing_user_turn",
                  "roles_not_alternating", "too_few_turns"]


def _shape_turn(draw_role, draw_text, calls):
    meta = {"tool_calls": [{"id": "c"}]} if calls else None
    return Turn(draw_role, draw_text, meta)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.lists(
            st.builds(
                _shape_turn,
                st.sampled_from(["system", "user", "assistant", "tool"]),
                st.sampled_from(["", " \n", "a question?", "\x01odd", "an answer."]),
                st.booleans(),
            ),
            max_size=7,
        ),
        min_size=1,
        max_size=30,
    ),
    st.sets(st.sampled_from(_SHAPE_FILTERS), min_size=1),
    st.integers(0, 3),
)
def test_a_chain_of_shape_filters_gives_what_it_gave_for_the_shape(convs, names, min_turns):
    config = FilterConfig(
        disabled=frozenset(filter_names()) - names, min_turns=min_turns, min_chars=0
    )
    remembering, plain = FilterChain.from_config(config), FilterChain.from_config(config)
    # (too_few_turns with min_turns 0 is off: a chain may have no filter at all)
    assert (remembering._by_shape is not None) == bool(remembering.filters)
    for i, turns in enumerate(convs):
        conv = Conversation(f"c{i}", turns)
        got, want = remembering.apply(conv), plain._filter(conv)[0]
        assert (got.reason, got.detail, got.parts) == (want.reason, want.detail, want.parts)
        if want.conv is None:
            assert got.conv is None
        else:
            assert [id(t) for t in got.conv.turns] == [id(t) for t in want.conv.turns]
            assert (got.conv is conv) == (want.conv is conv)
    assert remembering.stats == plain.stats


def test_a_chain_with_a_filter_that_reads_text_goes_through_its_filters_every_time():
    assert FilterChain.from_config(FilterConfig())._by_shape is None
    only_length = FilterConfig(disabled=frozenset(filter_names()) - {"too_short"})
    assert FilterChain.from_config(only_length)._by_shape is None


def test_a_subclass_of_a_shape_filter_that_reads_text_is_not_taken_for_one():
    class TooFewWords(TooFewTurns):
        name = "too_few_words"

        def check(self, conv):
            return self.name if sum(len(t.content.split()) for t in conv.turns) < 3 else None

    chain = FilterChain([TooFewWords()])
    assert chain._by_shape is None
    a = Conversation("a", [Turn("user", "one two three"), Turn("assistant", "four")])
    b = Conversation("b", [Turn("user", "x"), Turn("assistant", "y")])
    assert (chain.apply(a).reason, chain.apply(b).reason) == (None, "too_few_words")


def test_a_chain_subclass_applies_through_its_own_apply_and_its_stats_stay_live():
    class Counted(FilterChain):
        calls = 0

        def apply(self, conv):
            Counted.calls += 1
            return super().apply(conv)

    config = FilterConfig(disabled=frozenset(filter_names()) - {"too_few_turns"}, min_chars=0)
    chain = Counted.from_config(config)
    stats = chain.stats
    ok = Conversation("a", [Turn("user", "q"), Turn("assistant", "a")])
    short = Conversation("b", [Turn("user", "q")])
    for conv in (ok, ok, short):
        chain(conv)
    assert Counted.calls == 3
    assert dict(stats) == {"total": 3, "kept": 2, "dropped_too_few_turns": 1}


def test_a_turn_the_shape_flags_cannot_read_goes_through_the_filters_in_order():
    # unprintable_turn cannot read content that is not text, but empty_turn cuts it first
    config = FilterConfig(
        disabled=frozenset(filter_names()) - {"empty_turn", "unprintable_turn"}, min_chars=0
    )
    remembering, plain = FilterChain.from_config(config), FilterChain.from_config(config)
    conv = Conversation(
        "a", [Turn("user", "q"), Turn("assistant", "a"), Turn("user", ""), Turn("user", None)]
    )
    got, want = remembering.apply(conv), plain._filter(conv)[0]
    assert (got.reason, got.parts) == (want.reason, want.parts)
    assert [t.content for t in got.conv.turns] == ["q", "a"]
