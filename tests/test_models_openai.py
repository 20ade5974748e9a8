"""OpenAIBackend against a real HTTP server on 127.0.0.1, started by the tests.

The server speaks the OpenAI completions and chat-completions protocol deterministically:
sample ``i`` of a request with seed ``s`` for prompt ``p`` is the text ``"{p}/s{s}/{i}"``, one
token per character, ended by the first stop string (reported as vLLM's ``stop_reason``) or,
for prompts containing "TRUNC", by the length limit. It can be told to fail, to cap the
number of choices per response, to hide ``stop_reason`` and to take its time.
"""

from __future__ import annotations

import email.utils
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rstar.format import STEP_END
from rstar.models import Completion, GenerationParams, OpenAIBackend, OpenAIRequestError
from rstar.models.openai_backend import retry_after


@dataclass
class Recorded:
    path: str
    body: dict
    headers: dict[str, str]
    at: float


@dataclass
class ServerState:
    requests: list[Recorded] = field(default_factory=list)
    fail_first: list[int] = field(default_factory=list)  # statuses for the next requests
    always_status: int | None = None
    max_choices: int | None = None
    report_stop_reason: bool = True
    honour_logprobs: bool = True
    delay: float = 0.0
    retry_after: str | None = None  # the Retry-After header of failed responses
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _sample(prompt: str, body: dict, seed: object, i: int, chat: bool) -> dict:
    text = f"{prompt}/s{seed}/{i}"
    stops = body.get("stop") or []
    finish = "length" if "TRUNC" in prompt or not stops else "stop"
    choice: dict = {"index": i, "finish_reason": finish}
    if finish == "stop":
        if body.get("include_stop_str_in_output"):
            text += stops[0]
        if STATE.report_stop_reason:
            choice["stop_reason"] = stops[0]
    if chat:
        choice["message"] = {"role": "assistant", "content": text}
        if body.get("logprobs") and STATE.honour_logprobs:
            choice["logprobs"] = {"content": [{"token": c, "logprob": 0.0} for c in text]}
    else:
        choice["text"] = text
        if body.get("logprobs") is not None and STATE.honour_logprobs:
            choice["logprobs"] = {"tokens": list(text), "token_logprobs": [0.0] * len(text)}
    return choice


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass

    def _reply(self, status: int, payload: dict | str) -> None:
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        self.send_response(status)
        if status != 200 and STATE.retry_after is not None:
            self.send_header("Retry-After", STATE.retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with STATE.lock:
            STATE.requests.append(Recorded(self.path, body, dict(self.headers), time.monotonic()))
            STATE.in_flight += 1
            STATE.max_in_flight = max(STATE.max_in_flight, STATE.in_flight)
            status = STATE.fail_first.pop(0) if STATE.fail_first else STATE.always_status
        try:
            time.sleep(STATE.delay)
            if status is not None:
                self._reply(status, f'{{"error": "internal boom {status}"}}')
                return
            chat = self.path == "/v1/chat/completions"
            if not chat and self.path != "/v1/completions":
                self._reply(404, {"error": f"no route {self.path}"})
                return
            prompt = body["messages"][-1]["content"] if chat else body["prompt"]
            count = min(body["n"], STATE.max_choices or body["n"])
            choices = [_sample(prompt, body, body.get("seed"), i, chat) for i in range(count)]
            tokens = sum(len(c["message"]["content"] if chat else c["text"]) for c in choices)
            usage = {"prompt_tokens": len(prompt), "completion_tokens": tokens}
            self._reply(200, {"choices": choices, "usage": usage})
        finally:
            with STATE.lock:
                STATE.in_flight -= 1


STATE = ServerState()


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture
def state() -> ServerState:
    global STATE
    STATE = ServerState()
    return STATE


def _backend(url: str, **kwargs: object) -> OpenAIBackend:
    options: dict = {"backoff_base": 0.05, "max_retries": 3, "timeout": 10.0} | kwargs
    return OpenAIBackend(url, "tiny-model", **options)


def test_completions_n_samples_per_prompt(server_url, state):
    params = GenerationParams(n=2, temperature=0.8, top_p=0.9, max_new_tokens=50, seed=7)
    with _backend(server_url) as backend:
        out = backend.generate(["p1", "p2", "p3"], params)
    assert out == [
        [Completion(f"{p}/s7/{i}{STEP_END}", STEP_END, False, len(f"{p}/s7/{i}")) for i in (0, 1)]
        for p in ("p1", "p2", "p3")
    ]
    first = next(r for r in state.requests if r.body["prompt"] == "p1")
    assert first.path == "/v1/completions"
    assert first.body == {
        "model": "tiny-model",
        "prompt": "p1",
        "n": 2,
        "temperature": 0.8,
        "top_p": 0.9,
        "max_tokens": 50,
        "stop": ["<end_of_step>", "<end_of_code>", "<end_of_answer>"],
        "seed": 7,
        "logprobs": 0,
    }


def test_chat_completions(server_url, state):
    params = GenerationParams(n=1, temperature=0.0, stop=("<end_of_answer>",))
    with _backend(server_url, api="chat") as backend:
        out = backend.generate(["hello"], params)
    # One choice: its token count comes from usage.
    assert out == [[Completion("hello/sNone/0<end_of_answer>", "<end_of_answer>", False, 13)]]
    (request,) = state.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["messages"] == [{"role": "user", "content": "hello"}]
    assert "seed" not in request.body and "logprobs" not in request.body


def test_chat_counts_tokens_from_logprobs(server_url, state):
    with _backend(server_url, api="chat") as backend:
        out = backend.generate(["hi"], GenerationParams(n=2, seed=1))
    assert [c.num_tokens for c in out[0]] == [len("hi/s1/0"), len("hi/s1/1")]
    assert state.requests[0].body["logprobs"] is True
    assert state.requests[0].body["top_logprobs"] == 0


def test_token_counts_from_usage_without_logprobs(server_url, state):
    state.honour_logprobs = False
    with _backend(server_url) as backend:
        out = backend.generate(["TRUNC", "x"], GenerationParams(n=3, seed=0))
    # usage counts all choices together: each gets an even share (the texts have equal length).
    assert [c.num_tokens for c in out[0]] == [len("TRUNC/s0/0")] * 3
    assert [c.num_tokens for c in out[1]] == [len("x/s0/0")] * 3


def test_fewer_choices_than_asked_are_topped_up(server_url, state):
    state.max_choices = 2
    with _backend(server_url) as backend:
        out = backend.generate(["q"], GenerationParams(n=5, seed=10))
    assert [r.body["n"] for r in state.requests] == [5, 3, 1]
    assert [r.body["seed"] for r in state.requests] == [10, 11, 12]
    assert [c.text for c in out[0]] == [
        f"q/s{seed}/{i}{STEP_END}" for seed, i in [(10, 0), (10, 1), (11, 0), (11, 1), (12, 0)]
    ]


def test_truncated_completion(server_url, state):
    with _backend(server_url) as backend:
        out = backend.generate(["TRUNC"], GenerationParams(max_new_tokens=3))
    assert out == [[Completion("TRUNC/sNone/0", None, True, len("TRUNC/sNone/0"))]]


def test_retries_429_with_exponential_backoff(server_url, state):
    state.fail_first = [429, 429]
    with _backend(server_url, backoff_base=0.2) as backend:
        out = backend.generate(["r"], GenerationParams(seed=0))
    assert out[0][0].text == "r/s0/0" + STEP_END
    times = [r.at for r in state.requests]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.2  # waits 0.2 s, then 0.4 s
    assert times[2] - times[1] >= 0.4


def test_server_error_surfaces_status_and_body_after_retries(server_url, state):
    state.always_status = 500
    with _backend(server_url, max_retries=2) as backend, pytest.raises(OpenAIRequestError) as err:
        backend.generate(["r"], GenerationParams())
    assert len(state.requests) == 3
    assert err.value.status == 500
    assert "HTTP 500 after 3 attempt(s)" in str(err.value)
    assert "internal boom 500" in str(err.value) and "internal boom 500" in err.value.body


def test_client_error_is_not_retried(server_url, state):
    state.always_status = 400
    with _backend(server_url) as backend, pytest.raises(OpenAIRequestError, match="HTTP 400"):
        backend.generate(["r"], GenerationParams())
    assert len(state.requests) == 1


def test_connection_errors_are_retried(server_url):
    with socket.socket() as sock:  # a port on which nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    with (
        _backend(f"http://127.0.0.1:{port}/v1", max_retries=2, backoff_base=0.1) as backend,
        pytest.raises(OpenAIRequestError, match=r"after 3 attempt\(s\): ConnectError") as err,
    ):
        backend.generate(["r"], GenerationParams())
    assert err.value.status is None
    assert time.monotonic() - start >= 0.1 + 0.2


def test_concurrency_limit(server_url, state):
    state.delay = 0.2
    prompts = [f"c{i}" for i in range(9)]
    with _backend(server_url, max_concurrency=3) as backend:
        out = backend.generate(prompts, GenerationParams(seed=0))
    assert [group[0].text for group in out] == [f"{p}/s0/0{STEP_END}" for p in prompts]
    assert state.max_in_flight == 3


def test_unreported_stop_string(server_url, state, caplog):
    state.report_stop_reason = False
    with _backend(server_url) as backend, caplog.at_level(logging.WARNING):
        out = backend.generate(["u", "v"], GenerationParams(seed=0))
    assert out == [[Completion("u/s0/0", None, False, 6)], [Completion("v/s0/0", None, False, 6)]]
    assert caplog.text.count("does not report which stop string") == 1


def test_extra_body_and_included_stop_string(server_url, state):
    extra = {"include_stop_str_in_output": True, "skip_special_tokens": False}
    with _backend(server_url, extra_body=extra) as backend:
        out = backend.generate(["e"], GenerationParams(seed=0))
    # vLLM's server already kept the stop string: it is not appended twice.
    assert out[0][0].text == "e/s0/0" + STEP_END
    assert state.requests[0].body["skip_special_tokens"] is False


def test_api_key_from_environment(server_url, state, monkeypatch):
    monkeypatch.setenv("RSTAR_TEST_KEY", "sekrit")
    with _backend(server_url, api_key_env="RSTAR_TEST_KEY") as backend:
        backend.generate(["k"], GenerationParams())
    monkeypatch.delenv("RSTAR_TEST_KEY")
    with _backend(server_url, api_key_env="RSTAR_TEST_KEY") as backend:
        backend.generate(["k"], GenerationParams())
    assert state.requests[0].headers["Authorization"] == "Bearer sekrit"
    assert "Authorization" not in state.requests[1].headers


def test_retry_after_is_honoured_over_the_backoff(server_url, state):
    state.fail_first, state.retry_after = [429], "0.6"
    with _backend(server_url, backoff_base=0.01) as backend:
        backend.generate(["r"], GenerationParams(seed=0))
    first, second = (r.at for r in state.requests)
    assert second - first >= 0.6  # the backoff alone would have waited 0.01 s


def test_retry_after_values():
    assert retry_after("7") == 7.0
    assert retry_after("1.5") == 1.5
    assert retry_after("-3") == 0.0
    assert retry_after(None) is None and retry_after("soon") is None
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 58 <= retry_after(in_a_minute) <= 60
    assert retry_after(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0.0


def test_the_deadline_stops_a_retry_the_server_asks_to_wait_for(server_url, state):
    state.always_status, state.retry_after = 503, "30"
    start = time.monotonic()
    with (
        _backend(server_url, deadline=2.0, max_retries=5) as backend,
        pytest.raises(OpenAIRequestError, match=r"HTTP 503 after 1 attempt.*deadline of 2 s") as e,
    ):
        backend.generate(["r"], GenerationParams())
    assert time.monotonic() - start < 1.5  # it did not sleep 30 s to find out
    assert len(state.requests) == 1 and e.value.status == 503


def test_the_deadline_bounds_a_slow_server(server_url, state):
    state.delay = 1.5  # each answer comes after 1.5 s; the deadline is 1 s
    start = time.monotonic()
    with (
        _backend(server_url, deadline=1.0, max_retries=5, backoff_base=0.05) as backend,
        pytest.raises(OpenAIRequestError, match=r"ReadTimeout.*deadline of 1 s"),
    ):
        backend.generate(["r"], GenerationParams())
    assert time.monotonic() - start < 1.4


def test_usage_sums_the_tokens_the_server_reports(server_url, state):
    state.fail_first = [429]
    prompts = ["ab", "cde", "f"]
    with _backend(server_url) as backend:
        out = backend.generate(prompts, GenerationParams(n=2, seed=0))
        usage = backend.usage
    completion = sum(len(c.text) - len(STEP_END) for group in out for c in group)
    assert usage == {
        "requests": 3,
        "retries": 1,
        "prompt_tokens": len("abcdef"),
        "completion_tokens": completion,
    }
