"""An OpenAI-compatible ``/v1/completions`` client (vLLM serve, SGLang, TGI) as an engine.

Each (problem, sample) is one ``n=1`` request carrying that sample's seed, so texts do
not depend on how requests are spread. Requests go to the ``endpoints`` round-robin
(data parallelism across servers) with at most ``concurrency`` in flight; transport
errors, 429 and 5xx are retried with exponential backoff on the next endpoint, other
4xx fail at once with the server's message, and so does a response without
``choices[0].text`` (a broken server's empty answer is not an empty completion).
Prompts are sent as token ids by default so the server does not re-tokenise (and add a
second BOS to) rendered templates.

Time limits. ``timeout`` is a *total* deadline per request, retries included, enforced
by cancelling the request (asyncio), so a server that trickles a byte every few seconds
cannot hold a request forever. Its default scales with ``max_tokens``:
``60 s + max_tokens / 20 tokens/s`` (a 32768-token answer from a server doing at least
20 tokens/s per sequence fits; ~28 min), so short runs against a dead server fail in
about a minute. The HTTP work runs on an event loop in a helper thread; the caller's
thread yields finished samples every ``FLUSH_SECONDS`` (so an interrupt loses only the
requests in flight) and reports the requests waiting, with the age of the oldest, and
each retry, through the ``on_wait``/``on_notice`` hooks the runner sets.
"""

from __future__ import annotations

import asyncio
import os
import queue
import random
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from m1eval.engines.base import (
    FLUSH_SECONDS,
    BatchClock,
    BatchResult,
    EngineBase,
    EngineError,
    GenerationRequest,
    batch_result,
)
from m1eval.engines.options import OptionError, OptionSpec, checked_options, redacted
from m1eval.engines.textcut import text_prefix_chars
from m1eval.records import Completion, SamplingConfig

OPTION_SPECS: dict[str, OptionSpec] = {
    "endpoints": OptionSpec(
        "list", help="server URLs, comma-separated (or repeat --endpoint); requests go round-robin"
    ),
    "tokenizer": OptionSpec("str", changes_samples=True, help="tokenizer folder or hub id, when it is not the model's"),
    "concurrency": OptionSpec("int", 1, help="requests in flight at once (default 32)"),
    "max_retries": OptionSpec(
        "int", 0, help="retries of a failed request (transport errors, 429, 5xx) on the next endpoint"
    ),
    "timeout": OptionSpec("float", 0, above=True, help="seconds a request may wait for the server"),
    "backoff": OptionSpec("float", 0, help="seconds before the first retry, doubled each time"),
    "api_key": OptionSpec(
        "str", secret=True, help="bearer token (default: $OPENAI_API_KEY); never written to the manifest"
    ),
    # two models behind one endpoint: the name is what tells their samples apart
    "served_model": OptionSpec(
        "str", changes_samples=True, help="model name the server serves, when it is not --model"
    ),
    "prompt_format": OptionSpec(
        "str", choices=("tokens", "text"), changes_samples=True, help="tokens (send token ids, default) or text"
    ),
}
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
DEFAULT_MAX_RETRIES = 4
CONNECT_TIMEOUT = 10.0
# The default total deadline: a fixed allowance plus max_tokens at this slowest acceptable
# per-sequence decode rate (tokens/s) of a loaded server.
BASE_DEADLINE = 60.0
MIN_TOKENS_PER_SECOND = 20.0
TICK = 0.5  # seconds between progress reports while requests wait
NOTICE_EVERY = 10.0  # at most one retry notice per this many seconds (a 503 storm is one line, not 32)


class ServerError(EngineError):
    """The server answered with an error that retrying will not fix."""


def normalise_endpoint(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url.removesuffix("/v1")


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def parse_endpoints(value: Any) -> list[str]:
    """The ``endpoints`` option as normalised URLs; ``OptionError`` when there is none or one is not http(s).

    Checked when a run is planned (``OpenAIEngine.check_options``), so a run without a server to
    ask, or with ``ftp://...``, is refused before its folder is made. A bare ``host:port`` means http.
    """
    raw = value or []
    if isinstance(raw, str):
        raw = raw.split(",")
    endpoints = [str(e).strip() for e in raw if str(e).strip()]
    if not endpoints:
        raise OptionError(
            "openai: the openai engine needs an endpoint: the http or https URL of an OpenAI-compatible server",
            option="endpoints",
        )
    urls = []
    for text in endpoints:
        scheme = _SCHEME.match(text)
        if scheme and scheme.group(1).lower() not in ("http", "https"):
            raise OptionError(
                f"openai: endpoint {text!r} is not an http or https URL (scheme {scheme.group(1)!r})",
                option="endpoints",
            )
        url = text if scheme else "http://" + text
        try:
            parts = urlsplit(url)
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if not parts.hostname or not port_ok:
            raise OptionError(f"openai: endpoint {text!r} is not an http or https URL with a host", option="endpoints")
        urls.append(normalise_endpoint(url))
    return urls


def default_timeout(max_tokens: int) -> float:
    """Total seconds one request may take, retries included, when ``-o timeout`` is not given."""
    return BASE_DEADLINE + max_tokens / MIN_TOKENS_PER_SECOND


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


def parse_choice(data: Any) -> tuple[str, dict[str, Any]]:
    """The text and first choice of a completions response; anything else is a malformed response.

    A choice without a string ``text`` is refused like a missing ``choices``: storing it as an
    empty completion would score a broken server's answer as a wrong one.
    """
    choices = data.get("choices") if isinstance(data, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, dict) or not isinstance(choice.get("text"), str):
        raise ServerError(f"openai: malformed response (no choices[0].text): {str(data)[:300]}")
    return choice["text"], choice


class OpenAIEngine(EngineBase):
    """Completions over HTTP; the model is the server's model name (or path it serves)."""

    name = "openai"
    option_specs = OPTION_SPECS

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        parse_endpoints(options.get("endpoints"))

    def __init__(self, model: str, *, options: dict[str, Any] | None = None) -> None:
        options = checked_options("openai", options, OPTION_SPECS)
        self.endpoints = parse_endpoints(options.get("endpoints"))
        self.model = model
        self.served_model = str(options.get("served_model") or model)
        self.concurrency = int(options.get("concurrency", 32))
        self.max_retries = int(options.get("max_retries", DEFAULT_MAX_RETRIES))
        self.backoff = float(options.get("backoff", 1.0))
        self.timeout: float | None = float(options["timeout"]) if "timeout" in options else None
        self.prompt_format = str(options.get("prompt_format", "tokens"))
        self.options = redacted(options, OPTION_SPECS)
        self.options.setdefault("max_retries", self.max_retries)
        self.options.setdefault("concurrency", self.concurrency)
        self.options.setdefault("timeout", "default: 60 s + max_tokens / 20 tokens/s")
        self._headers = {
            "Authorization": f"Bearer {options.get('api_key') or os.environ.get('OPENAI_API_KEY') or 'EMPTY'}"
        }
        self._check_endpoints()
        from m1eval.models.prompts import load_tokenizer

        self.tokenizer = load_tokenizer(str(options.get("tokenizer") or model))

    def _check_endpoints(self) -> None:
        import httpx

        with httpx.Client(timeout=CONNECT_TIMEOUT, headers=self._headers) as client:
            for url in self.endpoints:
                try:
                    response = client.get(f"{url}/v1/models")
                except httpx.HTTPError as exc:
                    raise EngineError(
                        f"openai: cannot reach endpoint {url} ({type(exc).__name__}: {exc}); is the server up?"
                    ) from exc
                if response.status_code != 200:
                    raise EngineError(
                        f"openai: endpoint {url} answered /v1/models with {response.status_code}: {_message(response)}"
                    )
                try:
                    served = [m.get("id") for m in response.json().get("data", []) if isinstance(m, dict)]
                except (ValueError, AttributeError) as exc:
                    raise EngineError(f"openai: endpoint {url} answered /v1/models with no model list") from exc
                if served and self.served_model not in served:
                    raise EngineError(
                        f"openai: endpoint {url} does not serve {self.served_model!r}; it serves {served}"
                    )

    # ------------------------------------------------------------------ one request (event-loop thread)

    def _body(self, request: GenerationRequest, seed: int, sampling: SamplingConfig) -> dict[str, Any]:
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
        return body

    async def _post(self, client: Any, slot: int, body: dict[str, Any], run: _Run, errors: list[str]) -> dict[str, Any]:
        import httpx

        last = ""
        for attempt in range(self.max_retries + 1):
            url = self.endpoints[(slot + attempt) % len(self.endpoints)]
            try:
                response = await client.post(f"{url}/v1/completions", json=body)
            except httpx.HTTPError as exc:
                last = f"{url}: {type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise ServerError(
                            f"openai: malformed response (not JSON) from {url}: {response.text[:300]!r}"
                        ) from exc
                last = f"{url}: HTTP {response.status_code}: {_message(response)}"
                if response.status_code not in RETRYABLE_STATUS:
                    raise ServerError(f"openai: server refused the request ({last})")
            errors.append(last)
            if attempt < self.max_retries:
                run.retried(last)
                delay = min(30.0, self.backoff * 2**attempt) * (0.75 + 0.5 * random.random())
                await asyncio.sleep(delay)
        raise EngineError(f"openai: request failed after {self.max_retries + 1} attempts; last error: {last}")

    async def _one(
        self,
        client: Any,
        slot: int,
        request: GenerationRequest,
        index: int,
        seed: int,
        sampling: SamplingConfig,
        run: _Run,
    ) -> Completion | None:
        async with run.slots:
            if run.stopping:
                return None  # a request failed: send no more, let the ones in flight finish
            key = (request.problem_id, index)
            run.started(key)
            deadline = self.timeout if self.timeout is not None else default_timeout(sampling.max_tokens)
            errors: list[str] = []
            try:
                async with asyncio.timeout(deadline):
                    data = await self._post(client, slot, self._body(request, seed, sampling), run, errors)
            except TimeoutError:
                earlier = f" after {len(errors)} failed attempt(s), last: {errors[-1][:300]}" if errors else ""
                raise EngineError(
                    f"openai: no complete answer for {request.problem_id} sample {index} within {deadline:g} s "
                    f"(total per request, retries included){earlier}; the server is stalled or slower than that: "
                    "check it, or raise -o timeout=SECONDS"
                ) from None
            finally:
                run.finished(key)
        text, choice = parse_choice(data)
        ids = choice.get("token_ids")
        if not isinstance(ids, list) or not all(isinstance(t, int) for t in ids):
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]  # re-tokenise locally
        usage = data.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        reason = choice.get("finish_reason")
        return Completion(
            problem_id=request.problem_id,
            sample_index=index,
            seed=seed,
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or len(request.prompt_token_ids or [])),
            completion_tokens=int(usage.get("completion_tokens") or len(ids)),
            finish_reason="length" if reason == "length" else "stop",
            batch_id="",  # set to the flush window's batch when yielded
            prefix_chars=text_prefix_chars(self.decode, list(ids), text),
        )

    async def _all(self, jobs: list[tuple[GenerationRequest, int, int]], sampling: SamplingConfig, run: _Run) -> None:
        import httpx

        timeout = httpx.Timeout(None, connect=CONNECT_TIMEOUT)  # the total deadline is asyncio's
        limits = httpx.Limits(max_connections=self.concurrency + 4)
        async with httpx.AsyncClient(timeout=timeout, headers=self._headers, limits=limits) as client:
            tasks = [
                asyncio.ensure_future(self._one(client, slot, r, i, s, sampling, run))
                for slot, (r, i, s) in enumerate(jobs)
            ]
            try:
                for next_done in asyncio.as_completed(tasks):
                    try:
                        completion = await next_done
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
                        run.fail(exc)
                        continue
                    if completion is not None:
                        run.results.put(completion)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ protocol (caller's thread)

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        """All samples of the chunk concurrently; finished ones are yielded every ``FLUSH_SECONDS``.

        On a failed request no new request is sent, the ones in flight finish, everything
        finished is yielded, then the error is raised. On KeyboardInterrupt the requests in
        flight are cancelled and what finished is yielded before the interrupt goes on.
        """
        jobs = [(r, i, s) for r in requests for i, s in zip(r.sample_indices, r.seeds)]
        if not jobs:
            return
        run = _Run(self.concurrency)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="m1eval-openai", daemon=True)
        thread.start()
        work = asyncio.run_coroutine_threadsafe(_in_loop(run, self._all(jobs, sampling, run)), loop)
        window: list[Completion] = []
        clock = BatchClock()  # one stored batch per flush window: tokens / its wall time is throughput
        last_notice = time.monotonic() - NOTICE_EVERY  # the first retry is said at once
        interrupted = ended = False
        try:
            try:
                while not ended:
                    try:
                        item = run.results.get(timeout=TICK)
                    except queue.Empty:
                        item = None
                    if item is _DONE:
                        ended = True
                    elif item is not None:
                        window.append(item)
                        self.report_progress(1, item.completion_tokens)
                    if self.on_wait is not None:
                        self.on_wait(*run.waiting())
                    if self.on_notice is not None and time.monotonic() - last_notice >= NOTICE_EVERY:
                        notice = run.take_notice()
                        if notice:
                            self.on_notice(notice)
                            last_notice = time.monotonic()
                    if window and not ended and time.perf_counter() - clock.t0 >= FLUSH_SECONDS:
                        yield batch_result(self.name, window, clock)
                        window, clock = [], BatchClock()
            except KeyboardInterrupt:
                interrupted = True
        finally:
            if not ended:  # interrupted, or the caller stopped early: cancel what is in flight
                work.cancel()
                window.extend(_drain(run.results, 30.0))  # finished while it wound down
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            if not thread.is_alive():
                loop.close()
            if self.on_wait is not None:
                self.on_wait(0, 0.0)
        if window:
            yield batch_result(self.name, window, clock)
        if interrupted:
            raise KeyboardInterrupt
        if run.error is not None:
            if isinstance(run.error, EngineError):
                raise run.error
            raise EngineError(f"openai: {type(run.error).__name__}: {run.error}") from run.error

    def close(self) -> None:
        """Nothing is held between calls: each ``generate`` opens and closes its own connections."""


_DONE = object()


def _drain(results: queue.Queue[Any], timeout: float) -> list[Completion]:
    """The completions queued until the event-loop side says it is done (or ``timeout`` passes)."""
    out: list[Completion] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            item = results.get(timeout=0.1)
        except queue.Empty:
            continue
        if item is _DONE:
            break
        out.append(item)
    return out


async def _in_loop(run: _Run, work: Any) -> None:
    try:
        await work
    finally:
        run.results.put(_DONE)


class _Run:
    """State shared by the event-loop thread and the caller's thread during one ``generate``."""

    def __init__(self, concurrency: int) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.results: queue.Queue[Any] = queue.Queue()
        self.error: BaseException | None = None
        self.stopping = False
        self._lock = threading.Lock()
        self._in_flight: dict[tuple[str, int], float] = {}
        self._retries = 0
        self._last_retry = ""

    def started(self, key: tuple[str, int]) -> None:
        with self._lock:
            self._in_flight[key] = time.monotonic()

    def finished(self, key: tuple[str, int]) -> None:
        with self._lock:
            self._in_flight.pop(key, None)

    def waiting(self) -> tuple[int, float]:
        """Requests sent and not answered, and how long the oldest has waited (seconds)."""
        with self._lock:
            if not self._in_flight:
                return 0, 0.0
            return len(self._in_flight), time.monotonic() - min(self._in_flight.values())

    def retried(self, error: str) -> None:
        with self._lock:
            self._retries += 1
            self._last_retry = error

    def take_notice(self) -> str:
        with self._lock:
            if not self._retries:
                return ""
            text = f"openai: {self._retries} request(s) retried; last error: {self._last_retry[:300]}"
            self._retries = 0
            return text

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = exc
            self.stopping = True
