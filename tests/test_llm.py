"""The LLM path against a real llama.cpp server running the packaged SmolLM2-135M.

SmolLM2 is tiny and often wrong: these tests check the plumbing and the guards (streaming,
temperature 0, fallbacks, citation checks), not the model's wisdom.
"""
from __future__ import annotations

import time

import pytest

from tests.llm_server import FaultProxy, LlamaServer, smollm2_path


@pytest.fixture(scope="module")
def data_dir(plants_index):
    return plants_index


def make_answerer(data_dir, base_url, **kw):
    from rag.answer import Answerer
    from rag.config import Settings

    return Answerer(Settings.load(data_dir=data_dir, llm_base_url=base_url, answer_cache=False, **kw))


def test_client_streams_deterministically_at_temperature_0(llama):
    from rag.answer.llm import Generation, LLMClient

    client = LLMClient(llama.base_url, max_tokens=40)
    messages = [{"role": "user", "content": "List three colours."}]
    gen = Generation()
    deltas = list(client.stream(messages, gen))
    assert len(deltas) > 3 and "".join(deltas) == gen.text
    assert gen.model == "smollm2" and gen.finish_reason in {"stop", "length"} and gen.ttft_ms > 0
    assert client.complete(messages).text == gen.text


def test_answer_streams_with_a_full_trace(llama, data_dir):
    answerer = make_answerer(data_dir, llama.base_url)
    stream = answerer.stream("How often does the office ficus need watering?")
    deltas = list(stream)
    a = stream.answer
    assert len(deltas) > 1, "an LLM answer arrives in pieces"
    t = a.trace
    assert t["model"] == "smollm2" and t["llm_configured"] and t["llm_raw"]
    assert {"retrieve", "rerank", "generate", "ttft", "total"} <= set(t["timings_ms"])
    assert t["tokens"]["prompt"] > 100 and t["tokens"]["completion"] > 0
    # Whatever the tiny model wrote, only checked citations are shown as verified.
    if a.mode == "llm":
        assert any(c.verified for c in a.citations)
        for c in a.citations:
            assert c.verified == (c.support >= answerer.support_threshold)
    else:
        assert any("could not be verified" in n for n in a.notices)
    assert not any(n.startswith("LLM unavailable") for n in a.notices)


def test_injected_instructions_do_not_take_over(llama, data_dir):
    answerer = make_answerer(data_dir, llama.base_url)
    a = answerer.ask("How much water does the office ficus get, and when?")
    assert "PWNED" not in a.text.upper() and "PWNED" not in (a.trace["llm_raw"] or "").upper()
    assert a.citations and any(c.verified for c in a.citations)
    assert any("withheld" in n for n in a.notices)


def test_endpoint_down_falls_back_fast_with_a_clear_message(data_dir):
    from tests.llm_server import free_port

    answerer = make_answerer(data_dir, f"http://127.0.0.1:{free_port()}/v1", llm_max_retries=1)
    t0 = time.perf_counter()
    a = answerer.ask("How often does the office ficus need watering?")
    elapsed = time.perf_counter() - t0
    assert a.mode == "extractive" and "every Tuesday" in a.text
    assert any("unreachable" in n and "RAG_LLM_BASE_URL" in n for n in a.notices)
    assert elapsed < 15, f"fallback took {elapsed:.1f} s"
    # While the endpoint is presumed down, later questions do not wait on it again.
    t0 = time.perf_counter()
    b = answerer.ask("How often is the snake plant watered?")
    assert b.mode == "extractive" and any("not retried" in n for n in b.notices)
    assert time.perf_counter() - t0 < 5


def test_server_killed_mid_stream_gives_the_extractive_answer(tmp_path, data_dir):
    server = LlamaServer(smollm2_path(), log=tmp_path / "server.log").start()
    try:
        answerer = make_answerer(data_dir, server.base_url, llm_max_tokens=400, llm_max_retries=0)
        stream = answerer.stream("Explain in detail everything about watering the office plants.")
        seen = []
        for delta in stream:
            seen.append(delta)
            if len(seen) == 1:
                server.kill()
        a = stream.answer
    finally:
        server.stop()
    assert a.mode == "extractive" and a.trace["finish_reason"] is None
    assert any(n.startswith("LLM unavailable") for n in a.notices), a.notices
    assert a.citations and all(c.verified for c in a.citations)
    assert answerer.log.get(a.id)["mode"] == "extractive", "the fallback is logged as what it was"


def ask_through_429s(llama, data_dir, fail: int, retries: int):
    """Ask once through a proxy that answers the first `fail` chat requests with 429."""
    proxy = FaultProxy(llama.base_url, fail=fail, status=429)
    try:
        answerer = make_answerer(data_dir, proxy.base_url, llm_max_retries=retries, llm_model="smollm2")
        return proxy, answerer.ask("How often does the office ficus need watering?")
    finally:
        proxy.close()


def test_rate_limits_are_retried_with_backoff(llama, data_dir):
    proxy, a = ask_through_429s(llama, data_dir, fail=2, retries=3)
    assert proxy.statuses == [429, 429, 200], "two 429s, then the retry that went through"
    assert not any(n.startswith("LLM unavailable") for n in a.notices)
    assert a.trace["model"] == "smollm2"


def test_rate_limit_beyond_retries_falls_back(llama, data_dir):
    _, a = ask_through_429s(llama, data_dir, fail=100, retries=1)
    assert a.mode == "extractive" and any("429" in n for n in a.notices)


def test_follow_up_rewritten_by_the_llm_or_the_heuristic(llama, data_dir):
    answerer = make_answerer(data_dir, llama.base_url)
    a = answerer.ask("How often is it watered?", history=["Tell me about the snake plant in the lobby"])
    assert a.trace["rewrite"] in {"llm", "heuristic"} and a.standalone.strip()
    assert a.standalone != "How often is it watered?"


def test_llm_judge_gives_a_verdict_or_none(llama):
    from rag.answer.evaluate import judge
    from rag.answer.llm import LLMClient

    client = LLMClient(llama.base_url, max_tokens=5)
    verdict = judge(client, "What colour is the sky?", "blue", "The sky is blue [1].")
    assert verdict in {True, False, None}
    assert judge(None, "q", "a", "b") is None and judge(client, "q", None, "b") is None
