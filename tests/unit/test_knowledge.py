"""The knowledge base: its file (errors named by line) and retrieval in two languages."""

from __future__ import annotations

import pytest

from avatar_agent.core.config import PROJECT_ROOT, ConfigError
from avatar_agent.speech.answers import KnowledgeAnswerer
from avatar_agent.speech.knowledge import (
    KnowledgeIndex,
    asks_for_person,
    load_knowledge,
    parse_knowledge,
)

EXAMPLE = PROJECT_ROOT / "configs" / "knowledge" / "example.yaml"


def _issues(text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_knowledge(text, "kb.yaml")
    return [str(i) for i in exc.value.issues]


def test_the_example_loads_with_a_dozen_entries() -> None:
    entries = load_knowledge(EXAMPLE)
    assert len(entries) >= 12
    assert {"order-status", "refund", "reset-password", "delivery-time",
            "opening-hours"} <= {e.id for e in entries}


def test_bad_yaml_names_its_line() -> None:
    (issue,) = _issues("- id: a\n  questions: [hi\n")
    assert issue.startswith("line ") and "not valid YAML" in issue


def test_a_missing_field_an_empty_answer_and_an_unknown_key_name_their_lines() -> None:
    issues = _issues(
        "- id: a\n"
        "  questions: [hello]\n"
        "  answer: '  '\n"
        "- id: b\n"
        "  answer: fine\n"
        "- id: c\n"
        "  questions: [x]\n"
        "  answer: y\n"
        "  colour: red\n"
    )
    assert issues == [
        "line 3: 0.answer: Value error, the answer is empty",
        "line 4: 1.questions: Field required",
        "line 9: 2.colour: unknown key",
    ]


def test_duplicate_ids_and_a_file_that_is_not_a_list_are_refused() -> None:
    assert _issues("- {id: a, questions: [x], answer: y}\n"
                   "- {id: a, questions: [z], answer: w}\n") == ["line 2: 1.id: duplicate id 'a'"]
    assert _issues("id: a\n") == ["line 1: <root>: must be a non-empty list of entries"]


@pytest.mark.parametrize(("said", "entry"), [
    ("Where's my order?", "order-status"),
    ("I'd like my money back please", "refund"),
    ("my password isn't working", "reset-password"),
    ("when do you open on saturday", "opening-hours"),
    ("the box came broken", "damaged-item"),
    ("我的订单到哪了", "order-status"),
    ("退款", "refund"),
    ("忘记密码了", "reset-password"),
])
def test_paraphrases_find_their_entry_above_the_default_threshold(said: str, entry: str) -> None:
    index = KnowledgeIndex(load_knowledge(EXAMPLE))
    match = index.best(said)
    assert match is not None and match.entry.id == entry
    assert match.score >= 0.45


@pytest.mark.parametrize("said", ["tell me a joke", "my cat is sick", "今天天气怎么样",
                                  "Kids are talking by the door"])
def test_unrelated_words_stay_below_it(said: str) -> None:
    entries = [e for e in load_knowledge(EXAMPLE) if e.id != "door-noise"]
    match = KnowledgeIndex(entries).best(said)
    assert match is not None and match.score < 0.45


def test_asking_for_a_person_in_words() -> None:
    for said in ("Can I talk to a human?", "I want to speak to a real person", "Operator!",
                 "转人工", "我要人工服务"):
        assert asks_for_person(said), said
    for said in ("Where is my order?", "The person at the door", "我想退货"):
        assert not asks_for_person(said), said


def test_the_knowledge_answerer_decides() -> None:
    kb = KnowledgeAnswerer(load_knowledge(EXAMPLE), min_score=0.45)
    ok = kb.decide("How do I reset my password?")
    assert (ok.kind, ok.entry_id) == ("answer", "reset-password")
    assert ok.confirm == "You need to get back into your account." and "Forgot password" in ok.text
    assert kb.decide("tell me a joke").kind == "unanswered"
    flagged = kb.decide("I was charged twice")  # an entry marked escalate
    assert (flagged.kind, flagged.entry_id) == ("unanswered", "charged-twice")
    assert kb.decide("talk to a human please").kind == "person"
    assert kb.decide("...").kind == "unanswered"


def test_without_a_knowledge_base_nothing_is_answered_but_a_person_can_be_asked_for() -> None:
    kb = KnowledgeAnswerer([], min_score=0.45)
    assert kb.decide("Where is my order?").kind == "unanswered"
    assert kb.decide("talk to a human").kind == "person"
    assert kb.confirmations() == []
