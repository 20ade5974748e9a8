"""``rstar serve``: a model behind an OpenAI-compatible HTTP server (a teacher on a CPU)."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

import typer

from rstar.cli.console import console, fail, profile_or_exit


def serve_command(
    path: str = typer.Argument(..., help="the model's checkpoint directory"),
    backend: str = typer.Option("ctranslate2", help="transformers or ctranslate2 (CPU), vllm"),
    name: str | None = typer.Option(
        None, help="the model name clients ask for (default: the directory's name)"
    ),
    host: str = typer.Option("127.0.0.1", help="interface to bind"),
    port: int = typer.Option(8100, min=1, max=65535),
    batch_size: int = typer.Option(32, min=1, help="prompts per backend call"),
    api_key_env: str | None = typer.Option(
        None, help="environment variable holding the key clients must send (default: none)"
    ),
    execute: bool = typer.Option(
        False,
        "--execute",
        help="answer a question in the policy's prompt with solutions whose programs ran in "
        "the sandbox, as a model with a code interpreter would (the toy teacher)",
    ),
    profile: str = typer.Option("tiny", help="profile whose search: and sandbox: --execute uses"),
) -> None:
    """Serve a model at http://HOST:PORT/v1 (completions, chat completions, models) for
    `OpenAIBackend` clients such as the synthesis stage; on GPUs use `vllm serve` instead."""
    import uvicorn
    from transformers import AutoTokenizer

    from rstar.models.config import ModelConfig
    from rstar.models.factory import generation_backend
    from rstar.models.openai_server import create_app

    key = None
    if api_key_env is not None:
        key = os.environ.get(api_key_env)
        if not key:
            raise fail(f"--api-key-env {api_key_env}: that environment variable is not set")
    try:
        model = generation_backend(ModelConfig(path=path, backend=backend, batch_size=batch_size))
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise fail(f"{path}: cannot serve this model with {backend}: {exc}") from exc
    served = name or Path(path).name

    def count_tokens(text: str) -> int:
        return len(tokenizer(text).input_ids)

    with ExitStack() as stack:
        if execute:
            from rstar.search.solving_backend import SolvingBackend

            prof = profile_or_exit(profile)
            sandbox = stack.enter_context(prof.sandbox.open())
            model = SolvingBackend(model, sandbox, prof.search, count_tokens)
        app = create_app(model, served, api_key=key, count_tokens=count_tokens)
        console.print(f"serving {served!r} at http://{host}:{port}/v1 (OpenAI-compatible)")
        uvicorn.run(app, host=host, port=port, log_level="warning")
