"""``rstar serve``: a real server process on 127.0.0.1 over a tiny model built in the test,
talked to with ``OpenAIBackend`` as a round talks to GPT-4 (issue 16)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tiny_models import make_bigram, tiny_checkpoint
from transformers import AutoTokenizer, LlamaForCausalLM

from rstar.format import STEP_END, STOP_STRINGS
from rstar.models import GenerationParams, OpenAIBackend, TransformersBackend
from rstar.models.openai_server import Batcher

KEY = "sk-test-0123456789"
PROMPTS = ["alpha beta", "beta gamma", "gamma alpha beta"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny Llama whose greedy steps are known: after "beta" the step ends (PROMPTS[0] and
    [2]), after "gamma" comes "gamma" again until the token limit (PROMPTS[1])."""
    path = tiny_checkpoint(
        tmp_path_factory.mktemp("served") / "toy-teacher", PROMPTS * 20, hidden=32
    )
    tok = AutoTokenizer.from_pretrained(path)
    model = LlamaForCausalLM.from_pretrained(path)
    beta, gamma = tok(PROMPTS[0]).input_ids[-1], tok(PROMPTS[1]).input_ids[-1]
    transitions = {beta: tok.convert_tokens_to_ids(STEP_END), gamma: gamma}
    make_bigram(model, transitions).save_pretrained(path)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    port, log = _free_port(), tmp_path_factory.mktemp("log") / "serve.log"
    command = [sys.executable, "-m", "rstar", "serve", str(model_dir)]
    command += ["--backend", "transformers", "--port", str(port), "--api-key-env", "TEACHER_KEY"]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=os.environ | {"TEACHER_KEY": KEY}
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(600):
            try:
                if httpx.get(
                    f"{url}/models", headers={"Authorization": f"Bearer {KEY}"}
                ).is_success:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
        yield url, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def _client(url: str, **kwargs: object) -> OpenAIBackend:
    return OpenAIBackend(url, "toy-teacher", api_key_env="TEACHER_KEY", max_retries=0, **kwargs)


@pytest.fixture
def teacher_key(monkeypatch):
    monkeypatch.setenv("TEACHER_KEY", KEY)


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_greedy_over_http_equals_the_backend_in_process(server, model_dir, teacher_key, api):
    url, _ = server
    params = GenerationParams(n=2, temperature=0.0, max_new_tokens=6, stop=STOP_STRINGS)
    local = TransformersBackend(str(model_dir)).generate(PROMPTS, params)
    with _client(url, api=api) as client:
        remote = client.generate(PROMPTS, params)
    assert remote == local
    # the first prompt's step ends at its stop string (sent back as vLLM's stop_reason)
    assert remote[0][0].text == STEP_END and remote[0][0].stop == STEP_END
    assert remote[1][0].truncated and remote[1][0].num_tokens == 6


def test_samples_and_usage(server, model_dir, teacher_key):
    url, _ = server
    params = GenerationParams(n=3, temperature=1.0, max_new_tokens=5, stop=(), seed=4)
    with _client(url) as client:
        out = client.generate(PROMPTS[1:], params)
        usage = client.usage
    assert [len(group) for group in out] == [3, 3]
    tok = AutoTokenizer.from_pretrained(model_dir)
    assert usage == {
        "requests": 2,
        "retries": 0,
        "prompt_tokens": sum(len(tok(p).input_ids) for p in PROMPTS[1:]),
        "completion_tokens": sum(c.num_tokens for group in out for c in group),
    }


def test_key_and_model_are_checked_and_the_key_is_never_logged(server, teacher_key):
    url, log = server
    body = {"model": "toy-teacher", "prompt": "alpha", "max_tokens": 2}
    assert httpx.post(f"{url}/completions", json=body).status_code == 401
    wrong = {"Authorization": "Bearer sk-wrong"}
    assert httpx.post(f"{url}/completions", json=body, headers=wrong).status_code == 401
    right = {"Authorization": f"Bearer {KEY}"}
    missing = httpx.post(f"{url}/completions", json=body | {"model": "gpt-4"}, headers=right)
    assert missing.status_code == 404
    assert "'gpt-4' is not served here; this server serves 'toy-teacher'" in missing.text
    assert httpx.post(f"{url}/completions", json=body, headers=right).is_success
    assert "toy-teacher" in log.read_text() and KEY not in log.read_text()


def test_concurrent_requests_are_generated_as_one_batch(model_dir):
    calls: list[int] = []
    backend = TransformersBackend(str(model_dir))

    class Recording:  # the real backend, with the size of each call written down
        def generate(self, prompts, params):
            calls.append(len(prompts))
            return backend.generate(prompts, params)

    batcher = Batcher(Recording(), window=0.5)
    params = GenerationParams(temperature=0.0, max_new_tokens=3)
    results: dict[str, object] = {}
    threads = [
        threading.Thread(target=lambda p=p: results.update({p: batcher.submit([p], params)}))
        for p in PROMPTS
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.close()
    assert calls == [3]
    assert [results[p][0] for p in PROMPTS] == backend.generate(PROMPTS, params)
