"""Requests to go on: what is_continuation takes, and what it leaves (real turns of the dumps)."""

from __future__ import annotations

import pytest

from convkit.continuation import is_continuation


@pytest.mark.parametrize(
    "text",
    [
        "continue", "Continue.", "Please continue from where you stopped", "go on...",
        "Keep going", "Continue writing please", "Continue\n\nPlease write in English language.",
        "Continue?", "Can you continue to generate?", "continúa", "Continuez", "продолжи",
        "繼續", "繼續未完成的說明", "続けてください", "계속 써줘", "계속해줘",
        "¡Continúa!", "「続けて」", "【继续】", '"continue"', "**Continue**", "> continue",
        "\ufeffcontinue",
    ],
)
def test_requests_to_go_on(text):
    assert is_continuation(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "Continued fractions?", "ContinueX", "What is next?", "morning",
        "Continue with step 3 of the plan you gave me today",
        "go on a trip to Paris, what should I see?",
        "Continue to use Python or switch to Rust?",
        "Carry on luggage size limits for United?",
        "Продолжительность жизни кошек?", "계속성이란 무엇인가요?", "继续教育是什么？",
        "継続は力なり", "续", "continue " + "x" * 200,
    ],
)
def test_other_turns(text):
    assert is_continuation(text) is False
