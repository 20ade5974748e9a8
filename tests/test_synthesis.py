"""Problem synthesis against a real OpenAI-compatible HTTP server on 127.0.0.1 with scripted,
deterministic answers."""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from http_stub import JSONHandler, start
from typer.testing import CliRunner

from rstar.cli import app
from rstar.models import OpenAIBackend, OpenAIRequestError
from rstar.problems import problem_id
from rstar.problems.synthesis import SynthesisConfig, asks_something, synthesize, vote
from rstar.store import Catalog, StoreLayout

WRITE = "WRITE A NEW PROBLEM FROM:\n"
SOLVE = "SOLVE:\n"
CONFIG = SynthesisConfig(
    problem_prompt=WRITE + "{question}", solve_prompt=SOLVE + "{question}", batch_size=3
)

SEEDS = {f"Seed {i}?": f"New problem {i}?" for i in range(1, 6)}
SEEDS["Seed 6?"] = "Seed 6?"  # the model copies its seed
SEEDS["Seed 7?"] = "   "  # the model writes nothing
SEEDS["Seed 9?"] = "New problem 9? And then CUT"  # runs out of tokens (finish_reason length)
SEEDS["Seed 10?"] = "Ann has 3 apples and 2 pears."  # a story that asks nothing
DISTINCT = [str(100 + i) for i in range(10)]
ANSWERS = {  # per new problem, the final answers of its 10 sampled solutions
    "New problem 1?": ["6"] * 7 + ["5"] * 3,
    "New problem 2?": DISTINCT,
    "New problem 3?": ["0.5", "\\frac{1}{2}", None, "1/2", "0.5", *DISTINCT[:5]],
    "New problem 4?": ["12", "13", "12", "13", "12", *DISTINCT[:5]],
    "New problem 5?": ["7", "7", None, None, *DISTINCT[:6]],
    "New problem 8?": ["1"] * 10,
}


def solution(answer: str | None) -> str:
    if answer is None:
        return "I could not finish this one."
    return f"Working it out step by step, the answer is \\boxed{{{answer}}}."


class Handler(JSONHandler):
    def do_POST(self) -> None:
        body = self.body()
        prompt = body["messages"][0]["content"]
        self.server.requests.append(prompt)
        self.server.headers.append(dict(self.headers))
        if len(self.server.requests) == getattr(self.server, "die_at", None):
            threading.Thread(target=self.server.shutdown).start()  # the server dies here,
            self.close_connection = True  # without answering this request
            return
        if prompt.startswith(WRITE):
            seed = prompt.removeprefix(WRITE)
            texts = [SEEDS.get(seed, seed.replace("Seed", "New problem"))] * body["n"]
        else:
            texts = [solution(a) for a in ANSWERS[prompt.removeprefix(SOLVE)]][: body["n"]]
        stop = (body.get("stop") or [None])[0]  # the stop string that ended it, if any
        choices = [
            {
                "index": i,
                "message": {"content": t},
                "finish_reason": "length" if t.endswith("CUT") else "stop",
                "stop_reason": None if t.endswith("CUT") else stop,
            }
            for i, t in enumerate(texts)
        ]
        self.reply({"choices": choices, "usage": {"completion_tokens": 10}})


@pytest.fixture
def server():
    httpd = start(Handler)
    httpd.requests, httpd.headers = [], []
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def backend(server):
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    with OpenAIBackend(url, "gpt-4-test", api="chat", max_retries=0) as client:
        yield client


def seeds(*questions: str) -> pa.Table:
    return pa.table({"problem_id": [problem_id(q) for q in questions], "question": list(questions)})


ALL_SEEDS = [f"Seed {i}?" for i in range(1, 8)]


def test_vote_groups_equivalent_answers():
    assert vote(["0.5", "\\frac{1}{2}", None, "3", "1/2"]).votes == 3
    assert vote(["0.5", "\\frac{1}{2}", None, "3", "1/2"]).answer == "0.5"
    assert vote(["2", "3", "3", "2"]).answer == "2"  # a tie goes to the group formed first
    assert vote([None, None]) == vote([])


def test_synthesis_keeps_agreeing_problems_and_records_everything(tmp_path, backend, server):
    result = synthesize(seeds(*ALL_SEEDS), backend, tmp_path, CONFIG, progress=False)
    assert result.judged == 7
    records = {r["seed_problem_id"]: r for r in result.records.to_pylist()}
    by_seed = [records[problem_id(q)] for q in ALL_SEEDS]
    assert [(r["kept"], r["votes"], r["agreed_answer"], r["reason"]) for r in by_seed] == [
        (True, 7, "6", "7 of 10 answers agree"),
        (False, 1, None, "1 of 10 answers agree (< 3)"),
        (True, 4, "0.5", "4 of 10 answers agree"),  # 0.5 = \frac{1}{2} = 1/2
        (True, 3, "12", "3 of 10 answers agree"),
        (False, 2, None, "2 of 10 answers agree (< 3)"),
        (False, 0, None, "not new: same question as a seed or an earlier candidate"),
        (False, 0, None, "the model wrote no problem"),
    ]
    assert by_seed[2]["answers"] == ["0.5", "\\frac{1}{2}", None, "1/2", "0.5", *DISTINCT[:5]]
    assert by_seed[0]["candidate_id"] == f"{problem_id('Seed 1?')}:0"
    assert by_seed[0]["question"] == "New problem 1?"
    assert result.problems.to_pylist() == [
        {"problem_id": problem_id(q), "question": q, "answer": a, "source": "synthetic",
         "level": None, "split": "train"}
        for q, a in (("New problem 1?", "6"), ("New problem 3?", "0.5"), ("New problem 4?", "12"))
    ]  # fmt: skip
    # One problem-writing request per seed and one solving request per new problem.
    assert sum(r.startswith(WRITE) for r in server.requests) == 7
    assert sum(r.startswith(SOLVE) for r in server.requests) == 5
    with Catalog(tmp_path) as catalog:  # the audit records, in the catalog
        view = catalog.sql(
            "SELECT count(*) AS n, count(*) FILTER (WHERE kept) AS kept FROM synthesis"
        )
        assert view.to_pylist() == [{"n": 7, "kept": 3}]


def test_rerun_skips_judged_candidates(tmp_path, backend, server):
    first = synthesize(seeds(*ALL_SEEDS), backend, tmp_path, CONFIG, progress=False)
    calls = len(server.requests)
    again = synthesize(seeds(*ALL_SEEDS), backend, tmp_path, CONFIG, progress=False)
    assert again.judged == 0 and len(server.requests) == calls
    assert again.records.sort_by("candidate_id") == first.records.sort_by("candidate_id")
    # A lost batch file (an interrupted run) is redone, and only that batch.
    parts = sorted(StoreLayout(tmp_path).synthesis_dir.glob("*.parquet"))
    assert len(parts) == 3  # batches of 3 seeds
    lost = pq.read_table(parts[0])
    parts[0].unlink()
    resumed = synthesize(seeds(*ALL_SEEDS, "Seed 8?"), backend, tmp_path, CONFIG, progress=False)
    assert resumed.judged == lost.num_rows + 1
    assert len(resumed.records) == 8
    assert "New problem 8?" in resumed.problems["question"].to_pylist()


def test_written_problems_lose_their_stop_string_and_cut_off_ones_are_not_kept(
    tmp_path, backend, server
):
    config = CONFIG.model_copy(update={"problem_stop": ("<eop>",)})
    result = synthesize(seeds("Seed 1?", "Seed 9?"), backend, tmp_path, config, progress=False)
    records = {r["seed_problem_id"]: r for r in result.records.to_pylist()}
    # the server ended the problem at "<eop>" (the client puts it back, synthesis drops it)
    assert records[problem_id("Seed 1?")]["question"] == "New problem 1?"
    assert records[problem_id("Seed 1?")]["kept"]
    cut = records[problem_id("Seed 9?")]
    assert (cut["kept"], cut["reason"]) == (False, "cut off: no end within max_new_tokens (2048)")
    assert sum(r.startswith(SOLVE) for r in server.requests) == 1  # the cut one is not solved


def test_a_reply_that_asks_nothing_is_not_a_problem(tmp_path, backend, server):
    result = synthesize(seeds("Seed 1?", "Seed 10?"), backend, tmp_path, CONFIG, progress=False)
    records = {r["seed_problem_id"]: r for r in result.records.to_pylist()}
    story = records[problem_id("Seed 10?")]
    assert (story["kept"], story["reason"], story["answers"]) == (
        False,
        "not a problem: it asks nothing (question_pattern)",
        None,
    )
    assert records[problem_id("Seed 1?")]["kept"]  # "New problem 1?" asks
    assert sum(r.startswith(SOLVE) for r in server.requests) == 1  # the story is not solved
    # "Find x." asks too; a user's own pattern replaces the default
    assert asks_something("Find x such that 2x = 4.", CONFIG)
    mine = CONFIG.model_copy(update={"question_pattern": "^Q:"})
    assert not asks_something("New problem 1?", mine)
    with pytest.raises(ValueError, match="not a regular expression"):
        SynthesisConfig(question_pattern="(")


def _serve(port: int = 0, die_at: int | None = None) -> ThreadingHTTPServer:
    httpd = start(Handler, port)
    httpd.requests, httpd.headers, httpd.die_at = [], [], die_at
    return httpd


def test_a_server_killed_mid_batch_resumes_without_asking_again_for_judged_candidates(
    tmp_path,
):
    # batches of 3 seeds; batch 1 is 3 write and 3 solve requests; the server dies at the
    # 8th request, while batch 2 writes its problems
    dying = _serve(die_at=8)
    port = dying.server_address[1]
    url = f"http://127.0.0.1:{port}/v1"
    with (
        OpenAIBackend(url, "gpt-4-test", api="chat", max_retries=0) as client,
        pytest.raises(OpenAIRequestError, match=f"POST {url}/chat/completions failed"),
    ):
        synthesize(seeds(*ALL_SEEDS), client, tmp_path, CONFIG, progress=False)
    dying.shutdown()  # (waits for the handler's shutdown to finish)
    dying.server_close()
    assert len(pq.ParquetDataset(StoreLayout(tmp_path).synthesis_dir).files) == 1  # batch 1
    restarted = _serve(port)
    try:
        with OpenAIBackend(url, "gpt-4-test", api="chat", max_retries=0) as client:
            result = synthesize(seeds(*ALL_SEEDS), client, tmp_path, CONFIG, progress=False)
    finally:
        restarted.shutdown()
        restarted.server_close()
    assert result.judged == 4 and len(result.records) == 7
    # batches 2 and 3 only: 4 writes (seeds 4-7) and 2 solves (new problems 4, 5)
    assert sorted(restarted.requests) == sorted(
        [WRITE + f"Seed {i}?" for i in (4, 5, 6, 7)] + [SOLVE + f"New problem {i}?" for i in (4, 5)]
    )
    assert result.problems["question"].to_pylist() == [
        "New problem 1?", "New problem 3?", "New problem 4?"
    ]  # fmt: skip


def _table_text(output: str) -> str:
    """A rich table's rows as plain words: borders dropped, spaces collapsed."""
    return " ".join(output.replace("│", " ").split())


def test_synthesize_command_writes_the_kept_problems_and_resumes(tmp_path, server):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(
        "".join(json.dumps({"question": f"Seed {i}?", "answer": "1"}) + "\n" for i in (1, 2, 3))
    )
    out = tmp_path / "synthetic.jsonl"
    command = [
        "problems", "synthesize", str(seeds),
        "--base-url", f"http://127.0.0.1:{server.server_address[1]}/v1", "--model", "gpt-4-test",
        "--problem-prompt", WRITE + "{question}", "--solve-prompt", SOLVE + "{question}",
        "--out", str(out), "--run-dir", str(tmp_path),
    ]  # fmt: skip
    dry = CliRunner().invoke(app, [*command, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert server.requests == []  # a dry run sends nothing
    # 3 seeds: 3 requests write 1 problem each, 3 solve them with 10 samples each
    for row in (
        "candidates to judge 3",
        "requests that write problems 3",
        "requests that solve them (at most) 3",
        "completions asked for (at most) 33",
        f"completion tokens (at most) {33 * 2048}",
    ):
        assert row in _table_text(dry.output), (row, dry.output)
    run = CliRunner(env={"RSTAR_TEST_KEY": "sekrit-123"}).invoke(
        app, [*command, "--api-key-env", "RSTAR_TEST_KEY"]
    )
    assert run.exit_code == 0, run.output
    assert "3 candidates judged now" in run.output and "2 kept" in run.output
    # the server reports 10 completion tokens per response and no prompt tokens
    assert "spent: 6 requests (0 retries), 0 prompt and 60 completion tokens" in run.output
    assert "sekrit" not in run.output
    assert server.headers[0]["Authorization"] == "Bearer sekrit-123"
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(row["question"], row["answer"], row["source"]) for row in kept] == [
        ("New problem 1?", "6", "synthetic"),  # 7 of 10 agree
        ("New problem 3?", "0.5", "synthetic"),  # 4 of 10 (0.5 = \frac{1}{2} = 1/2)
    ]  # New problem 2: no two answers agree
    requests = len(server.requests)
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 0 and "0 candidates judged now" in again.output
    dry = CliRunner().invoke(app, [*command, "--dry-run"])
    assert "candidates to judge 0" in _table_text(dry.output)
    assert len(server.requests) == requests
    with Catalog(StoreLayout.for_run(tmp_path), read_only=True) as catalog:
        audit = catalog.sql(
            "SELECT count(*) AS n, count(*) FILTER (WHERE kept) AS kept FROM synthesis"
        )
    assert audit.to_pylist() == [{"n": 3, "kept": 2}]
