"""Answering what the customer said: one small interface, two implementations.

`KnowledgeAnswerer` (the default, offline) answers from the knowledge base;
`OpenAIAnswerer` asks any OpenAI-compatible chat endpoint (`answer.backend: openai`),
with the knowledge entries as its context and a timeout, and falls back to the
knowledge base when the endpoint fails, times out or says nothing usable.

Either way the answer says which way the call goes: `answer` (confirm and solve),
`unanswered` (the agent says so honestly; an operator is asked to join) or `person`
(the customer asked for one in words).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Literal, Protocol

import aiohttp

from avatar_agent.speech.knowledge import Entry, KnowledgeIndex, asks_for_person

log = logging.getLogger(__name__)

Kind = Literal["answer", "unanswered", "person"]
# The chat model is told to say exactly this when the entries do not cover a question.
NO_ANSWER = "NO_ANSWER"


@dataclass(frozen=True, slots=True)
class Answer:
    kind: Kind
    text: str = ""  # what solves it (kind `answer`)
    confirm: str | None = None  # the agent's words for the question, when it has them
    entry_id: str | None = None
    score: float = 0.0
    source: str = "knowledge"


class Answerer(Protocol):
    async def answer(self, text: str, history: list[tuple[str, str]]) -> Answer:
        """An answer to the customer's latest words; `history` is the call's transcript
        so far as (role, text) pairs, oldest first."""
        ...

    def confirmations(self) -> list[str]:
        """Sentences known in advance that open answers (synthesized at start-up)."""
        ...


class KnowledgeAnswerer:
    def __init__(self, entries: list[Entry], min_score: float) -> None:
        self.index = KnowledgeIndex(entries)
        self.min_score = min_score

    def decide(self, text: str) -> Answer:
        """Pure: the knowledge base's answer to `text`."""
        if asks_for_person(text):
            return Answer("person")
        match = self.index.best(text)
        if match is None:
            return Answer("unanswered")
        entry, score = match.entry, match.score
        if score < self.min_score:
            return Answer("unanswered", entry_id=entry.id, score=score)
        if entry.escalate:
            return Answer("unanswered", confirm=entry.confirmation(), entry_id=entry.id,
                          score=score)
        return Answer("answer", entry.answer.strip(), entry.confirmation(), entry.id, score)

    async def answer(self, text: str, history: list[tuple[str, str]]) -> Answer:
        return self.decide(text)

    def confirmations(self) -> list[str]:
        return [e.confirmation() for e in self.index.entries]


class OpenAIAnswerer:
    """POST {base_url}/chat/completions with the entries as context; the knowledge base
    answers instead when the endpoint fails or is slower than `timeout_s`."""

    def __init__(self, fallback: KnowledgeAnswerer, base_url: str, model: str,
                 api_key_env: str | None, timeout_s: float) -> None:
        self.fallback = fallback
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.failures = 0

    def confirmations(self) -> list[str]:
        return self.fallback.confirmations()

    def _system(self) -> str:
        lines = ["You are the voice of a customer-support agent on a phone call. Answer "
                 "in one to three short spoken sentences, in the customer's language, "
                 "only from these entries. If they do not answer the question, or an "
                 f"entry is marked escalate, reply exactly {NO_ANSWER}.", ""]
        for e in self.fallback.index.entries:
            flag = " (escalate)" if e.escalate else ""
            lines.append(f"[{e.id}]{flag} Q: {' / '.join(e.questions)}\nA: {e.answer.strip()}")
        return "\n".join(lines)

    async def answer(self, text: str, history: list[tuple[str, str]]) -> Answer:
        known = self.fallback.decide(text)
        if known.kind == "person":
            return known  # asking for a person needs no model
        messages = [{"role": "system", "content": self._system()}]
        messages += [{"role": "user" if role == "customer" else "assistant", "content": t}
                     for role, t in history[-10:]]
        if not history or history[-1] != ("customer", text):
            messages.append({"role": "user", "content": text})
        headers = {}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            payload = {"model": self.model, "messages": messages, "temperature": 0.2}
            async with (aiohttp.ClientSession(timeout=self.timeout) as http,
                        http.post(self.url, headers=headers, json=payload) as resp):
                resp.raise_for_status()
                body = await resp.json()
            reply = str(body["choices"][0]["message"]["content"]).strip()
        except (aiohttp.ClientError, TimeoutError, KeyError, IndexError, TypeError,
                ValueError) as exc:
            self.failures += 1
            log.warning("answer backend failed (%s): the knowledge base answers",
                        type(exc).__name__)
            return known
        if not reply:
            return known
        if NO_ANSWER in reply:
            return Answer("unanswered", entry_id=known.entry_id, score=known.score,
                          source="openai")
        confirm = known.confirm if known.kind == "answer" else None
        return Answer("answer", reply, confirm, known.entry_id, known.score, source="openai")
