"""Answering: the OpenAI-compatible backend against a local server that speaks that API
(its request, a timeout, errors, "no answer"), with the knowledge base as its fallback;
the reply layers built around an answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from avatar_agent.core.config import PROJECT_ROOT, AnswerConfig
from avatar_agent.core.config_speech import RepliesConfig
from avatar_agent.speech.answers import NO_ANSWER, Answer, KnowledgeAnswerer, OpenAIAnswerer
from avatar_agent.speech.knowledge import load_knowledge
from avatar_agent.speech.replies import ReplyComposer

EXAMPLE = PROJECT_ROOT / "configs" / "knowledge" / "example.yaml"


class ChatServer:
    """POST /v1/chat/completions as an OpenAI-compatible server answers it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.reply = "Your parcel is on its way."
        self.delay_s = 0.0
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        await asyncio.sleep(self.delay_s)
        if self.status != 200:
            return web.json_response({"error": {"message": "overloaded"}}, status=self.status)
        return web.json_response({"id": "x", "object": "chat.completion", "choices": [
            {"index": 0, "finish_reason": "stop",
             "message": {"role": "assistant", "content": self.reply}}]})


@pytest_asyncio.fixture
async def chat() -> AsyncIterator[tuple[ChatServer, str]]:
    server = ChatServer()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.handle)
    ts = TestServer(app)
    await ts.start_server()
    yield server, str(ts.make_url("/v1"))
    await ts.close()


def _backend(url: str, timeout_s: float = 2.0) -> OpenAIAnswerer:
    kb = KnowledgeAnswerer(load_knowledge(EXAMPLE), min_score=0.45)
    return OpenAIAnswerer(kb, url, "test-model", "AVATAR_TEST_KEY", timeout_s)


async def test_the_endpoint_answers_with_the_entries_as_context(
    chat: tuple[ChatServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = chat
    monkeypatch.setenv("AVATAR_TEST_KEY", "sk-test")
    backend = _backend(url)
    history = [("customer", "Hi"), ("agent", "Hello, how can I help?"),
               ("customer", "Where is my order?")]
    out = await backend.answer("Where is my order?", history)
    assert out == Answer("answer", "Your parcel is on its way.",
                         "You'd like to know where your order is.", "order-status",
                         out.score, source="openai")
    (req,) = server.requests
    assert req["model"] == "test-model"
    assert [m["role"] for m in req["messages"]] == ["system", "user", "assistant", "user"]
    assert req["messages"][-1]["content"] == "Where is my order?"
    assert "[reset-password]" in req["messages"][0]["content"]  # the knowledge as context
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


async def test_no_answer_from_the_model_means_unanswered(chat: tuple[ChatServer, str]) -> None:
    server, url = chat
    server.reply = NO_ANSWER
    out = await _backend(url).answer("What is the meaning of life?", [])
    assert (out.kind, out.source) == ("unanswered", "openai")


async def test_a_slow_endpoint_times_out_and_the_knowledge_base_answers(
    chat: tuple[ChatServer, str]
) -> None:
    server, url = chat
    server.delay_s = 2.0
    backend = _backend(url, timeout_s=0.3)
    t0 = asyncio.get_running_loop().time()
    out = await backend.answer("How do I reset my password?", [])
    assert asyncio.get_running_loop().time() - t0 < 1.5
    assert (out.kind, out.entry_id, out.source) == ("answer", "reset-password", "knowledge")
    assert "Forgot password" in out.text
    assert backend.failures == 1


async def test_an_error_or_no_server_falls_back(chat: tuple[ChatServer, str]) -> None:
    server, url = chat
    server.status = 503
    out = await _backend(url).answer("How long does delivery take?", [])
    assert (out.kind, out.entry_id, out.source) == ("answer", "delivery-time", "knowledge")
    gone = await _backend("http://127.0.0.1:9/v1").answer("When are you open?", [])
    assert (gone.entry_id, gone.source) == ("opening-hours", "knowledge")


async def test_asking_for_a_person_never_waits_for_the_model(chat: tuple[ChatServer, str]) -> None:
    server, url = chat
    out = await _backend(url).answer("Can I talk to a human?", [])
    assert out.kind == "person" and not server.requests


def test_reply_layers_around_an_answer() -> None:
    replies = RepliesConfig()
    words = AnswerConfig()
    composer = ReplyComposer(replies, "call")
    found = Answer("answer", "Here is the answer.", "You asked this.", "x", 0.9)
    calm = composer.compose_answer("calm", 10.0, found, words)
    assert [(p.layer, p.text) for p in calm] == [("confirm", "You asked this."),
                                                 ("solve", "Here is the answer.")]
    furious = composer.compose_answer("furious", 10.0, found, words, since=0.0)
    assert [p.layer for p in furious] == ["soothe", "confirm", "solve", "repair"]
    assert furious[0].text in replies.furious.acknowledge  # the first 30 s of fury
    assert furious[3].text in replies.furious.repair
    upset = composer.compose_answer("dissatisfied", 10.0, Answer("unanswered"), words)
    assert upset[0].layer == "apology" and upset[-1] == upset[-1].__class__(
        "solve", words.unanswered)
    person = composer.compose_answer("calm", 10.0, Answer("person"), words)
    assert [(p.layer, p.text) for p in person] == [("solve", words.handoff)]
