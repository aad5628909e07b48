"""An OpenAI-compatible ``/v1/completions`` client (vLLM serve, SGLang, TGI) as an engine.

Each (problem, sample) is one ``n=1`` request carrying that sample's seed, so texts do
not depend on how requests are spread. Requests go to the ``endpoints`` round-robin
(data parallelism across servers) with at most ``concurrency`` in flight; transport
errors, timeouts, 429 and 5xx are retried with exponential backoff on the next endpoint,
other 4xx fail at once with the server's message. Prompts are sent as token ids by
default so the server does not re-tokenise (and add a second BOS to) rendered templates.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from m1eval.engines.base import BatchResult, EngineError, GenerationRequest, batch_timing, checked_options
from m1eval.engines.textcut import text_prefix_chars
from m1eval.records import Completion, SamplingConfig

OPTIONS = (
    "endpoints", "tokenizer", "concurrency", "max_retries", "timeout", "backoff", "api_key", "served_model",
    "prompt_format",
)
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class ServerError(EngineError):
    """The server answered with an error that retrying will not fix."""


def normalise_endpoint(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url.removesuffix("/v1")


def _message(response: Any) -> str:
    try:
        body = response.json()
        if isinstance(body, dict):
            err = body.get("error", body)
            if isinstance(err, dict):
                return str(err.get("message") or err)
            return str(err)
    except ValueError:
        pass
    return response.text[:500]


class OpenAIEngine:
    """Completions over HTTP; the model is the server's model name (or path it serves)."""

    name = "openai"

    def __init__(self, model: str, *, options: dict[str, Any] | None = None) -> None:
        import httpx

        options = checked_options("openai", options, OPTIONS)
        endpoints = options.get("endpoints") or []
        if isinstance(endpoints, str):
            endpoints = [e for e in endpoints.split(",") if e.strip()]
        if not endpoints:
            raise EngineError("openai: no endpoint; pass --endpoint URL (repeat it to spread over several servers)")
        self.endpoints = [normalise_endpoint(e) for e in endpoints]
        self.model = model
        self.served_model = str(options.get("served_model") or model)
        self.concurrency = max(1, int(options.get("concurrency", 32)))
        self.max_retries = max(0, int(options.get("max_retries", 5)))
        self.backoff = float(options.get("backoff", 1.0))
        self.prompt_format = str(options.get("prompt_format", "tokens"))
        if self.prompt_format not in ("tokens", "text"):
            raise EngineError(f"openai: prompt_format must be 'tokens' or 'text', got {self.prompt_format!r}")
        self.options = {k: v for k, v in options.items() if k != "api_key"}
        self.on_progress: Callable[[int, int], None] | None = None
        api_key = options.get("api_key") or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.client = httpx.Client(
            timeout=httpx.Timeout(float(options.get("timeout", 600.0)), connect=10.0),
            headers={"Authorization": f"Bearer {api_key}"},
            limits=httpx.Limits(max_connections=self.concurrency + 4),
        )
        self._check_endpoints()
        from m1eval.prompts import load_tokenizer

        self.tokenizer = load_tokenizer(str(options.get("tokenizer") or model))

    def _check_endpoints(self) -> None:
        import httpx

        for url in self.endpoints:
            try:
                response = self.client.get(f"{url}/v1/models", timeout=10.0)
            except httpx.HTTPError as exc:
                self.client.close()
                raise EngineError(f"openai: cannot reach endpoint {url} ({type(exc).__name__}: {exc}); is the server up?") from exc
            if response.status_code != 200:
                self.client.close()
                raise EngineError(f"openai: endpoint {url} answered /v1/models with {response.status_code}: {_message(response)}")
            served = [m.get("id") for m in response.json().get("data", [])]
            if served and self.served_model not in served:
                self.client.close()
                raise EngineError(f"openai: endpoint {url} does not serve {self.served_model!r}; it serves {served}")

    # ------------------------------------------------------------------ one request

    def _post(self, slot: int, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        last = ""
        for attempt in range(self.max_retries + 1):
            url = self.endpoints[(slot + attempt) % len(self.endpoints)]
            try:
                response = self.client.post(f"{url}/v1/completions", json=body)
            except httpx.HTTPError as exc:
                last = f"{url}: {type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return response.json()
                last = f"{url}: HTTP {response.status_code}: {_message(response)}"
                if response.status_code not in RETRYABLE_STATUS:
                    raise ServerError(f"openai: server refused the request ({last})")
            if attempt < self.max_retries:
                delay = min(30.0, self.backoff * 2**attempt) * (0.75 + 0.5 * random.random())
                time.sleep(delay)
        raise EngineError(f"openai: request failed after {self.max_retries + 1} attempts; last error: {last}")

    def _one(self, slot: int, request: GenerationRequest, index: int, seed: int, sampling: SamplingConfig,
             batch_id: str) -> Completion:
        if self.prompt_format == "tokens" and request.prompt_token_ids is not None:
            prompt: Any = list(request.prompt_token_ids)
        else:
            prompt = request.prompt
        body: dict[str, Any] = {
            "model": self.served_model,
            "prompt": prompt,
            "n": 1,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": seed,
            "return_token_ids": True,  # vLLM extension; other servers ignore it
        }
        if sampling.top_k and sampling.top_k > 0:
            body["top_k"] = sampling.top_k
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        data = self._post(slot, body)
        try:
            choice = data["choices"][0]
            text = choice.get("text") or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise ServerError(f"openai: malformed response (no choices[0].text): {str(data)[:300]}") from exc
        ids = choice.get("token_ids")
        if ids is None:  # server without token ids: re-tokenise the text locally
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        usage = data.get("usage") or {}
        reason = choice.get("finish_reason")
        return Completion(
            problem_id=request.problem_id,
            sample_index=index,
            seed=seed,
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or len(request.prompt_token_ids or [])),
            completion_tokens=int(usage.get("completion_tokens") or len(ids)),
            finish_reason="length" if reason == "length" else "stop",
            batch_id=batch_id,
            prefix_chars=text_prefix_chars(self._decode, list(ids), text),
        )

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    # ------------------------------------------------------------------ protocol

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        """All samples of the chunk concurrently; on a failure the finished ones are yielded, then it raises."""
        jobs = [(r, i, s) for r in requests for i, s in zip(r.sample_indices, r.seeds)]
        if not jobs:
            return
        batch_id = uuid.uuid4().hex[:12]
        started = time.time()
        t0 = time.perf_counter()
        done: list[Completion] = []
        error: BaseException | None = None
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="m1eval-openai")
        try:
            pending: set[Future[Completion]] = {
                pool.submit(self._one, slot, r, i, s, sampling, batch_id) for slot, (r, i, s) in enumerate(jobs)
            }
            while pending and error is None:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    try:
                        completion = future.result()
                    except Exception as exc:  # noqa: BLE001 - reported after keeping the others
                        error = error or exc
                        continue
                    done.append(completion)
                    if self.on_progress is not None:
                        self.on_progress(1, completion.completion_tokens)
            if error is not None:  # keep what already came back from requests in flight
                for future in pending:
                    future.cancel()
                for future in pending:
                    if not future.cancelled():
                        try:
                            done.append(future.result())
                        except Exception:  # noqa: BLE001
                            pass
        finally:
            pool.shutdown(wait=error is not None, cancel_futures=True)
        if done:
            timing = batch_timing(batch_id, self.name, done, time.perf_counter() - t0, started)
            yield BatchResult(done, timing, extra={"partial": error is not None})
        if error is not None:
            if isinstance(error, EngineError):
                raise error
            raise EngineError(f"openai: {type(error).__name__}: {error}") from error

    def close(self) -> None:
        self.client.close()
