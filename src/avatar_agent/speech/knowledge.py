"""The support team's knowledge base: questions customers ask, and the answers.

`knowledge.path` names a YAML file holding a list of entries::

    - id: reset-password
      questions: ["How do I reset my password?", "I forgot my password", "忘记密码"]
      answer: "On the sign-in page, choose Forgot password ..."
      confirm: "You need a new password."   # optional: the agent's words for the question
      escalate: false                       # optional: true hands this topic to a person

Retrieval is TF-IDF over character n-grams (scikit-learn): it needs no word
segmentation, so it works the same for English and Mandarin, and it forgives the
small misspellings speech recognition makes. An entry's score is the best cosine
similarity between the customer's words and any of its phrasings.

Pure: no I/O except :func:`load_knowledge`, no clock.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field, TypeAdapter, ValidationError, field_validator
from sklearn.feature_extraction.text import TfidfVectorizer

from avatar_agent.core.section import Section
from avatar_agent.core.yamlconfig import ConfigError, ConfigIssue, load_yaml


class Entry(Section):
    id: str = Field(min_length=1, max_length=100)
    questions: list[str] = Field(min_length=1)
    answer: str
    confirm: str | None = None
    escalate: bool = False

    @field_validator("questions")
    @classmethod
    def _phrasings(cls, v: list[str]) -> list[str]:
        if any(not q.strip() for q in v):
            raise ValueError("a question is empty")
        return v

    @field_validator("answer")
    @classmethod
    def _answered(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the answer is empty")
        return v

    def confirmation(self) -> str:
        """The agent's words for what the customer asked."""
        if self.confirm:
            return self.confirm
        q = self.questions[0].strip().rstrip("?？。.!！")
        if _CJK.search(q):
            return f"您是想问：{q}。"
        return f"You're asking: {q[0].lower() + q[1:]}."


_ENTRIES = TypeAdapter(list[Entry])
_CJK = re.compile(r"[\u3400-\u9fff]")


def parse_knowledge(text: str, source: str = "<string>") -> list[Entry]:
    """Validate a knowledge file; ConfigError names the line of every problem."""
    data, lines = load_yaml(text, source)
    if not isinstance(data, list) or not data:
        raise ConfigError(source, [ConfigIssue("", 1, "must be a non-empty list of entries")])
    try:
        entries = _ENTRIES.validate_python(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines),
                        None)
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            issues.append(ConfigIssue(".".join(loc), line, msg))
        raise ConfigError(source, issues) from None
    seen: dict[str, int] = {}
    for i, e in enumerate(entries):
        if e.id in seen:
            raise ConfigError(source, [ConfigIssue(f"{i}.id", lines.get((str(i), "id")),
                                                   f"duplicate id {e.id!r}")])
        seen[e.id] = i
    return entries


def load_knowledge(path: Path) -> list[Entry]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [ConfigIssue("", None, f"cannot read: {exc}")]) from None
    return parse_knowledge(text, str(path))


def normalise(text: str) -> str:
    """Lower case, width-folded (NFKC), punctuation as spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


@dataclass(frozen=True, slots=True)
class Match:
    entry: Entry
    score: float  # cosine similarity 0..1 with the entry's closest phrasing


class KnowledgeIndex:
    """The entries' phrasings as TF-IDF vectors of character 1-4-grams."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self._owner = [i for i, e in enumerate(entries) for _ in e.questions]
        phrasings = [normalise(q) for e in entries for q in e.questions]
        self._vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)
        # No knowledge base (knowledge.path: null): nothing ever matches.
        self._matrix = self._vec.fit_transform(phrasings) if any(phrasings) else None

    def best(self, text: str) -> Match | None:
        """The closest entry and its score; None for text with nothing to match."""
        query = normalise(text)
        if not query or self._matrix is None:
            return None
        sims = np.asarray((self._matrix @ self._vec.transform([query]).T).toarray()).ravel()
        if not sims.size:
            return None
        row = int(np.argmax(sims))
        return Match(self.entries[self._owner[row]], float(sims[row]))


# Asking for a person in words ("talk to a human", "人工"): the agent hands over at once.
_PERSON = re.compile(
    r"\b(?:talk|speak|speaking|talking|connect me|put me through)\b.{0,20}?"
    r"\b(?:human|person|people|someone|somebody|agent|operator|representative|manager|"
    r"real person|colleague)\b"
    r"|\b(?:human|real person|live agent|operator|representative)\b.{0,12}?\bplease\b"
    r"|^\s*(?:a\s+)?(?:human|operator|agent|representative)\s*[.!?]?\s*$"
    r"|人工|真人|转接|客服人员|找人|接线员",
    re.IGNORECASE,
)


def asks_for_person(text: str) -> bool:
    return _PERSON.search(text) is not None
