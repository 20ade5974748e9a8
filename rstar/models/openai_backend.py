"""Generation through an OpenAI-compatible HTTP server (``/completions`` or ``/chat/completions``).

One request per prompt asks for all ``n`` samples; a server that returns fewer gets further
requests for the rest. Requests run in a thread pool of ``max_concurrency``; 408, 409, 429,
5xx and connection errors are retried, after the wait the server asks for in ``Retry-After``
or else with exponential backoff, anything else fails at once. A request (its retries and
waits included) gives up at its ``deadline``. The tokens the server reports in ``usage`` are
summed per backend (``OpenAIBackend.usage``), so that a run against a paid API knows what it
spent.

The OpenAI API drops the stop string that ended a completion and does not say which one it
was; vLLM's server adds a ``stop_reason`` field, which is used to put it back. Without it
``Completion.stop`` is None (a warning says so once per backend). Per-sample token counts come
from the sampled tokens' logprobs (requested for that when ``n > 1``), else from ``usage``.
"""

from __future__ import annotations

import email.utils
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Literal

import httpx

from rstar.models.base import Completion, GenerationParams, with_stop

logger = logging.getLogger(__name__)

Api = Literal["completions", "chat"]
RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))


class OpenAIRequestError(RuntimeError):
    """A request that failed for good; ``status`` is None when no HTTP response came back."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass
class Usage:
    """What a backend has spent so far: answered requests, retries, and the tokens the
    server reported in ``usage`` (0 where it reports none)."""

    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None
    when it is absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def request_payload(
    model: str, prompt: str, params: GenerationParams, *, api: Api, n: int, seed: int | None
) -> dict[str, Any]:
    """The JSON body asking for ``n`` samples of ``prompt``."""
    payload: dict[str, Any] = {
        "model": model,
        "n": n,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_new_tokens,
    }
    if api == "chat":
        payload["messages"] = [{"role": "user", "content": prompt}]
    else:
        payload["prompt"] = prompt
    if params.stop:
        payload["stop"] = list(params.stop)
    if seed is not None:
        payload["seed"] = seed
    if n > 1:
        # Only the sampled tokens' logprobs, to count each sample's tokens exactly.
        payload.update({"logprobs": True, "top_logprobs": 0} if api == "chat" else {"logprobs": 0})
    return payload


def _choice_tokens(choice: dict[str, Any], api: Api) -> int | None:
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, dict):
        return None
    tokens = logprobs.get("content") if api == "chat" else logprobs.get("tokens")
    return len(tokens) if isinstance(tokens, list) else None


def parse_response(data: dict[str, Any], api: Api) -> tuple[list[Completion], bool]:
    """The Completions in a response body, and whether every stop was identified.

    The second value is False when a choice stopped on a stop condition but the server did
    not report which (no ``stop_reason``); such a Completion has ``stop=None``.
    """
    choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
    usage_tokens = (data.get("usage") or {}).get("completion_tokens")
    identified = True
    completions = []
    for k, choice in enumerate(choices):
        text = (choice["message"]["content"] or "") if api == "chat" else choice["text"]
        num_tokens = _choice_tokens(choice, api)
        if num_tokens is None and isinstance(usage_tokens, int):
            # usage covers all choices: exact for one, an even share (estimate) for several.
            num_tokens = usage_tokens // len(choices) + (k < usage_tokens % len(choices))
        stop = choice.get("stop_reason")
        if choice.get("finish_reason") != "stop":
            completions.append(Completion(text, None, truncated=True, num_tokens=num_tokens or 0))
        elif isinstance(stop, str):
            completions.append(Completion(with_stop(text, stop), stop, False, num_tokens or 0))
        else:
            identified = identified and "stop_reason" in choice
            completions.append(Completion(text, None, truncated=False, num_tokens=num_tokens or 0))
    return completions, identified


class OpenAIBackend:
    """A model behind an OpenAI-compatible server (vLLM's ``vllm serve``, OpenAI, ...).

    ``base_url`` ends before the endpoint (e.g. ``http://127.0.0.1:8000/v1``). The API key is
    read from the environment variable ``api_key_env`` when set (local servers need none).
    ``extra_body`` is merged into every request, e.g. vLLM's
    ``{"skip_special_tokens": False, "include_stop_str_in_output": True}``.
    ``timeout`` (seconds) applies to connecting, sending and each read. A failed request is
    retried up to ``max_retries`` times; retry k waits what the response's ``Retry-After``
    says, else ``min(backoff_max, backoff_base * 2**(k-1))`` seconds. ``deadline`` (seconds,
    None for none) bounds one request with its retries and waits: a request that cannot
    finish within it fails with the last error.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api: Api = "completions",
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        max_concurrency: int = 8,
        extra_body: dict[str, Any] | None = None,
        deadline: float | None = 900.0,
    ) -> None:
        if api not in ("completions", "chat"):
            raise ValueError(f"api must be 'completions' or 'chat', got {api!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if deadline is not None and deadline <= 0:
            raise ValueError(f"deadline must be > 0 seconds or None, got {deadline}")
        self.model = model
        self.timeout = timeout
        self.deadline = deadline
        self.api: Api = api
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_concurrency = max_concurrency
        self.extra_body = dict(extra_body or {})
        self.url = base_url.rstrip("/") + ("/chat/completions" if api == "chat" else "/completions")
        headers = {}
        if key := os.environ.get(api_key_env):
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            headers=headers,
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_concurrency),
        )
        self._warned_unidentified_stop = False
        self._usage = Usage()
        self._usage_lock = threading.Lock()

    @property
    def usage(self) -> dict[str, int]:
        """A snapshot of what this backend has spent (``Usage``'s fields)."""
        with self._usage_lock:
            return asdict(self._usage)

    def _count(self, *, retries: int = 0, data: dict[str, Any] | None = None) -> None:
        reported = (data or {}).get("usage") or {}
        with self._usage_lock:
            self._usage.retries += retries
            if data is not None:
                self._usage.requests += 1
                for name in ("prompt_tokens", "completion_tokens"):
                    if isinstance(reported.get(name), int):
                        setattr(self._usage, name, getattr(self._usage, name) + reported[name])

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def generate(self, prompts: list[str], params: GenerationParams) -> list[list[Completion]]:
        """Per prompt, ``params.n`` completions (see ``GenerationBackend``)."""
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return list(pool.map(lambda p: self._samples(p, params), prompts))

    def _samples(self, prompt: str, params: GenerationParams) -> list[Completion]:
        """All n samples of one prompt, asking again for the rest when a response falls short."""
        samples: list[Completion] = []
        requests = 0
        while len(samples) < params.n:
            seed = None if params.seed is None else params.seed + requests
            payload = request_payload(
                self.model, prompt, params, api=self.api, n=params.n - len(samples), seed=seed
            )
            got, identified = parse_response(self._post({**payload, **self.extra_body}), self.api)
            requests += 1
            if not got:
                raise OpenAIRequestError(f"POST {self.url} returned no choices", status=200)
            if not identified and not self._warned_unidentified_stop:
                self._warned_unidentified_stop = True
                logger.warning(
                    "%s does not report which stop string ended a completion (no stop_reason "
                    "field): Completion.stop is None and the text lacks the stop string",
                    self.url,
                )
            samples.extend(got)
        return samples[: params.n]

    def _backoff(self, retry: int) -> float:
        return min(self.backoff_max, self.backoff_base * 2 ** (retry - 1))

    def _remaining(self, started: float, error: OpenAIRequestError, wait: float = 0.0) -> float:
        """Seconds left of the request's deadline after ``wait``; raises when none are."""
        if self.deadline is None:
            return self.timeout
        left = self.deadline - (time.monotonic() - started) - wait
        if left <= 0:
            raise OpenAIRequestError(
                f"{error} -- gave up: the request's deadline of {self.deadline:g} s "
                f"(OpenAIBackend deadline) leaves no time for another attempt",
                status=error.status,
                body=error.body,
            )
        return min(self.timeout, left)

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        error = OpenAIRequestError(f"POST {self.url}: no attempt made")
        started, wait = time.monotonic(), 0.0
        for attempt in range(self.max_retries + 1):
            timeout = self._remaining(started, error, wait)
            if attempt:
                time.sleep(wait)
                self._count(retries=1)
            try:
                response = self._client.post(self.url, json=payload, timeout=timeout)
            except httpx.TransportError as exc:
                error = OpenAIRequestError(
                    f"POST {self.url} failed after {attempt + 1} attempt(s): "
                    f"{type(exc).__name__}: {exc}"
                )
                wait = self._backoff(attempt + 1)
                continue
            if response.is_success:
                try:
                    data = response.json()
                except ValueError as exc:
                    raise OpenAIRequestError(
                        f"POST {self.url} returned a body that is not JSON: {response.text[:2000]}",
                        status=response.status_code,
                        body=response.text,
                    ) from exc
                self._count(data=data)
                return data
            error = OpenAIRequestError(
                f"POST {self.url} failed with HTTP {response.status_code} after {attempt + 1} "
                f"attempt(s): {response.text[:2000]}",
                status=response.status_code,
                body=response.text,
            )
            if response.status_code not in RETRY_STATUSES:
                break
            asked = retry_after(response.headers.get("retry-after"))
            wait = self._backoff(attempt + 1) if asked is None else asked
        raise error
