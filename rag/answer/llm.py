"""Any OpenAI-compatible chat endpoint, through the `openai` package only.

OpenAI, Azure OpenAI, vLLM, Ollama and llama.cpp server all speak this protocol. Calls use
temperature 0 and stream; the client retries 408/409/429/5xx and connection errors with
exponential backoff (the `openai` package's own policy, `max_retries` times) and gives up
after `timeout_s`. Failures raise LLMUnavailable with a message that says what to check;
the answerer then falls back to the extractive answer instead of an error page.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator

from rag.errors import RagError


class LLMUnavailable(RagError):
    reason = "llm_unavailable"


@dataclass
class Generation:
    """Filled in while a stream is consumed."""

    text: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_ms: float | None = None
    total_ms: float | None = None
    finish_reason: str | None = None
    model: str = ""
    usage_reported: bool = False
    extra: dict = field(default_factory=dict)


class LLMClient:
    """Lightweight to construct; the HTTP client is made on first use."""

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None,
                 timeout_s: float = 60.0, max_retries: int = 2, max_tokens: int = 400,
                 cooldown_s: float = 30.0):
        if not base_url:
            raise RagError("an LLM needs a base URL: set RAG_LLM_BASE_URL (e.g. http://localhost:8080/v1)")
        self.base_url = base_url.rstrip("/")
        self._model = model or None
        self.api_key = api_key or "not-needed"  # local servers accept any key; the client insists on one
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        self.cooldown_s = cooldown_s
        self._client = None
        self._down_until = 0.0
        self._last_error = ""

    @property
    def client(self):
        if self._client is None:
            from openai import OpenAI, Timeout

            self._client = OpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=self.max_retries,
                                  timeout=Timeout(self.timeout_s, connect=min(5.0, self.timeout_s)))
        return self._client

    def _explain(self, e: Exception) -> LLMUnavailable:
        import openai

        where = f"the LLM endpoint {self.base_url}"
        if isinstance(e, openai.APITimeoutError):
            msg = f"{where} did not answer within {self.timeout_s:.0f} s"
        elif isinstance(e, openai.APIConnectionError):
            msg = (f"{where} is unreachable ({e.__cause__ or e}); check RAG_LLM_BASE_URL, "
                   "or start the local LLM with `make llm`")
        elif isinstance(e, openai.AuthenticationError):
            msg = f"{where} refused the API key (401); check RAG_LLM_API_KEY"
        elif isinstance(e, openai.NotFoundError):
            msg = f"{where} does not know model {self._model!r} or the path (404); check RAG_LLM_MODEL and the URL"
        elif isinstance(e, openai.RateLimitError):
            msg = f"{where} is rate-limiting (429) even after {self.max_retries} retries"
        elif isinstance(e, openai.APIStatusError):
            msg = f"{where} answered HTTP {e.status_code}: {str(e)[:200]}"
        else:
            msg = f"{where} failed: {type(e).__name__}: {str(e)[:200]}"
        self._last_error = msg
        self._down_until = time.monotonic() + self.cooldown_s  # every failure starts the cool-down
        return LLMUnavailable(msg)

    @property
    def cooling_down(self) -> str | None:
        """The last error while the endpoint is presumed down (no call is tried meanwhile)."""
        return self._last_error if time.monotonic() < self._down_until else None

    def model(self) -> str:
        """The configured model, or the server's first model when none is configured."""
        if self._model is None:
            import openai

            try:
                models = self.client.models.list().data
            except openai.OpenAIError as e:
                raise self._explain(e) from e
            if not models:
                raise LLMUnavailable(f"the LLM endpoint {self.base_url} lists no models; set RAG_LLM_MODEL")
            self._model = models[0].id
        return self._model

    def ping(self, timeout_s: float = 3.0) -> None:
        """List the server's models once, without retries; raises LLMUnavailable saying why."""
        import openai

        try:
            self.client.with_options(timeout=timeout_s, max_retries=0).models.list()
        except openai.OpenAIError as e:
            raise self._explain(e) from e

    def stream(self, messages: list[dict], gen: Generation, max_tokens: int | None = None) -> Iterator[str]:
        """Yield text deltas; fill `gen` (tokens, timings). Raises LLMUnavailable, also mid-stream."""
        import openai

        if (why := self.cooling_down) is not None:
            raise LLMUnavailable(why + " (not retried for a few seconds)")
        t0 = time.perf_counter()
        try:
            gen.model = self.model()
            stream = self.client.chat.completions.create(
                model=gen.model, messages=messages, temperature=0, stream=True,
                max_tokens=max_tokens or self.max_tokens, stream_options={"include_usage": True})
            for event in stream:
                if getattr(event, "usage", None):
                    gen.prompt_tokens = event.usage.prompt_tokens
                    gen.completion_tokens = event.usage.completion_tokens
                    gen.usage_reported = True
                if not event.choices:
                    continue
                choice = event.choices[0]
                if choice.finish_reason:
                    gen.finish_reason = choice.finish_reason
                delta = choice.delta.content if choice.delta else None
                if delta:
                    if gen.ttft_ms is None:
                        gen.ttft_ms = (time.perf_counter() - t0) * 1000
                    gen.text += delta
                    yield delta
        except openai.OpenAIError as e:
            raise self._explain(e) from e
        except Exception as e:  # a broken stream surfaces as httpx/h11 errors mid-iteration
            if type(e).__module__.split(".")[0] not in {"httpx", "httpcore", "h11", "httpx2", "json"}:
                raise
            raise self._explain(e) from e
        finally:
            gen.total_ms = (time.perf_counter() - t0) * 1000
        if gen.finish_reason is None:
            raise self._explain(RuntimeError(f"the stream ended without a finish reason after "
                                             f"{len(gen.text)} characters"))
        self._down_until = 0.0

    def complete(self, messages: list[dict], max_tokens: int | None = None) -> Generation:
        gen = Generation()
        for _ in self.stream(messages, gen, max_tokens):
            pass
        return gen


__all__ = ["Generation", "LLMClient", "LLMUnavailable"]
