"""An OpenAI-compatible HTTP server over any rstar ``GenerationBackend`` (``rstar serve``).

What a round asks of a teacher over HTTP, as vLLM's ``vllm serve`` offers it on GPUs, for
models that run on a CPU: ``POST /v1/completions`` and ``/v1/chat/completions`` (``n``
samples, temperature, top_p, max_tokens, stop strings, seed; vLLM's ``stop_reason`` names
the stop string that ended a choice and ``include_stop_str_in_output`` keeps it in the
text), ``GET /v1/models``, token counts in ``usage``, and an optional API key.

Requests that arrive together are generated as one batch (those with the same sampling
settings, gathered for ``batch_window`` seconds) by one thread: a CPU backend is fastest on
batches, and the backends are not made for concurrent calls.

Chat messages become one prompt: their contents joined by blank lines (the toy models have
no chat template).
"""

from __future__ import annotations

import hmac
import queue
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rstar.models.base import Completion, GenerationBackend, GenerationParams


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")  # logprobs, user, ...: accepted, not used

    model: str
    n: int = Field(1, ge=1, le=128)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    include_stop_str_in_output: bool = False

    def params(self) -> GenerationParams:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop or []
        return GenerationParams(
            n=self.n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_tokens,
            stop=tuple(s for s in stop if s),
            seed=self.seed,
        )


class CompletionRequest(_Sampling):
    prompt: str | list[str]


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str
    content: str


class ChatRequest(_Sampling):
    messages: list[Message] = Field(min_length=1)


@dataclass
class _Job:
    prompt: str
    params: GenerationParams
    done: threading.Event = field(default_factory=threading.Event)
    result: list[Completion] | None = None
    error: BaseException | None = None


def _key(params: GenerationParams) -> tuple:
    return (
        params.n,
        params.temperature,
        params.top_p,
        params.max_new_tokens,
        params.stop,
        params.seed,
    )


class Batcher:
    """One thread that calls the backend; concurrent ``submit`` calls are batched."""

    def __init__(
        self, backend: GenerationBackend, window: float = 0.02, max_batch: int = 64
    ) -> None:
        self.backend, self.window, self.max_batch = backend, window, max_batch
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="generation", daemon=True)
        self._thread.start()

    def submit(self, prompts: list[str], params: GenerationParams) -> list[list[Completion]]:
        jobs = [_Job(prompt, params) for prompt in prompts]
        for job in jobs:
            self._queue.put(job)
        for job in jobs:
            job.done.wait()
            if job.error is not None:
                raise job.error
        return [job.result or [] for job in jobs]

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _gather(self, first: _Job) -> list[_Job]:
        """``first`` and what else arrives within the window (at most ``max_batch``)."""
        jobs, until = [first], time.monotonic() + self.window
        while len(jobs) < self.max_batch:
            try:
                job = self._queue.get(timeout=max(0.0, until - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                self._queue.put(None)
                break
            jobs.append(job)
        return jobs

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            groups: dict[tuple, list[_Job]] = defaultdict(list)
            for job in self._gather(first):
                groups[_key(job.params)].append(job)
            for group in groups.values():
                try:
                    outputs = self.backend.generate([j.prompt for j in group], group[0].params)
                    for job, output in zip(group, outputs, strict=True):
                        job.result = output
                except Exception as exc:  # the requests fail with it; the server goes on
                    for job in group:
                        job.error = exc
                finally:
                    for job in group:
                        job.done.set()


def _choice(completion: Completion, index: int, keep_stop: bool) -> tuple[str, dict]:
    """The choice's text and its fields; the stop string is dropped as OpenAI's API does."""
    text = completion.text
    if completion.stop and not keep_stop:
        text = text.removesuffix(completion.stop)
    finish = "length" if completion.truncated else "stop"
    return text, {"index": index, "finish_reason": finish, "stop_reason": completion.stop}


def create_app(
    backend: GenerationBackend,
    model_name: str,
    *,
    api_key: str | None = None,
    count_tokens: Callable[[str], int] | None = None,
    batch_window: float = 0.02,
    max_batch: int = 64,
) -> FastAPI:
    """The server's ASGI app; ``count_tokens`` (a tokenizer's length) fills usage's
    prompt_tokens. With ``api_key``, requests must send ``Authorization: Bearer <key>``."""
    batcher = Batcher(backend, batch_window, max_batch)
    app = FastAPI(title=f"rstar: {model_name}", docs_url=None, redoc_url=None)
    app.router.on_shutdown.append(batcher.close)
    expected = f"Bearer {api_key}".encode() if api_key else None

    @app.middleware("http")
    async def authorize(request: Request, call_next):
        given = request.headers.get("authorization", "").encode()
        if expected is not None and not hmac.compare_digest(given, expected):
            error = {"message": "missing or wrong API key", "type": "invalid_request_error"}
            return JSONResponse({"error": error}, status_code=401)
        return await call_next(request)

    def check_model(name: str) -> None:
        if name != model_name:
            served = f"this server serves {model_name!r} (GET /v1/models)"
            raise HTTPException(404, f"model {name!r} is not served here; {served}")

    def respond(kind: str, prompts: list[str], body: _Sampling, chat: bool) -> dict:
        outputs = batcher.submit(prompts, body.params())
        choices, completion_tokens = [], 0
        for p, completions in enumerate(outputs):
            for k, completion in enumerate(completions):
                keep = body.include_stop_str_in_output
                text, choice = _choice(completion, p * body.n + k, keep)
                if chat:
                    choice["message"] = {"role": "assistant", "content": text}
                else:
                    choice |= {"text": text, "logprobs": None}
                choices.append(choice)
                completion_tokens += completion.num_tokens
        usage = {"completion_tokens": completion_tokens}
        if count_tokens is not None:
            usage["prompt_tokens"] = sum(count_tokens(p) for p in prompts)
            usage["total_tokens"] = usage["prompt_tokens"] + completion_tokens
        return {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
            "object": kind,
            "created": int(time.time()),
            "model": model_name,
            "choices": choices,
            "usage": usage,
        }

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": model_name, "object": "model"}]}

    @app.post("/v1/completions")
    def completions(body: CompletionRequest) -> dict:
        check_model(body.model)
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        return respond("text_completion", prompts, body, chat=False)

    @app.post("/v1/chat/completions")
    def chat_completions(body: ChatRequest) -> dict:
        check_model(body.model)
        prompt = "\n\n".join(m.content for m in body.messages)
        return respond("chat.completion", [prompt], body, chat=True)

    return app
