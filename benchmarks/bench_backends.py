"""Generation backends compared on the search's own requests, in one run.

    .venv/bin/pip install -c constraints.txt -e '.[bench]'   # onnxruntime-genai for the comparison
    .venv/bin/python benchmarks/bench_backends.py --policy runs/toy/base-policy

A short MCTS over toy train problems (levels 2-4, the tiny profile's search settings) is run
with the transformers backend, recording every generate call it makes (prompts and sampling
parameters). Each backend then replays exactly those calls; the report gives generated
tokens/s per backend and the ratio to transformers, measured in the same run:

- ``transformers``: the reference (``rstar.models.TransformersBackend``);
- ``ctranslate2`` (float32 and int8): ``rstar.models.CTranslate2Backend``;
- ``onnxruntime-genai`` (fp32): its model builder's conversion, generated with its
  ``Generator`` loop (an adapter in this script: it is a candidate, not a project backend).

It also decodes 200 toy prompts greedily with each backend and counts the outputs equal to
the transformers backend's, and samples the search's prompts again with transformers and
CTranslate2 (at least ``--steps`` steps each) to compare the distributions of step length,
step validity and answer correctness with two-sample tests. Conversion time is reported
apart (it happens once per checkpoint). onnxruntime-genai's CPU attention kernel needs a
head size that is a multiple of 16, which the base policy (width 96, 4 heads: 24) is not; so
the three are also compared on raw decoding with a model of width 128 and 4 heads (head size
32, the 1.3 M shape of issue 15), randomly initialised: 64 toy prompts, 4 samples each, 64
new tokens each (no stop), the same work for every backend."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rstar.config import load_profile
from rstar.format import ASSISTANT_TAG, USER_TAG, FormatError, build_prompt, parse_step
from rstar.grading import is_correct
from rstar.models import (
    Completion,
    CTranslate2Backend,
    GenerationBackend,
    GenerationParams,
    TransformersBackend,
)
from rstar.models.decoding import completion_from_ids, stop_token_ids
from rstar.models.loading import load_tokenizer
from rstar.search import MCTS, SearchProblem
from rstar.toy.model import build_tiny_llama
from rstar.toy.world import problem_pool


class Recording:
    """A backend passed through, with every generate call kept."""

    def __init__(self, backend: GenerationBackend) -> None:
        self.backend = backend
        self.calls: list[tuple[list[str], GenerationParams]] = []

    def generate(self, prompts: list[str], params: GenerationParams) -> list[list[Completion]]:
        self.calls.append((list(prompts), params))
        return self.backend.generate(prompts, params)


ORT_MAX_SEQUENCES = 32  # onnxruntime-genai's CPU limit on sequences in one generator


class OrtGenAI:
    """onnxruntime-genai behind the generation interface (for this comparison only)."""

    def __init__(self, checkpoint: Path, out_dir: Path, batch_size: int) -> None:
        import onnxruntime_genai as og

        self.tokenizer = load_tokenizer(checkpoint)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(checkpoint),
             "-o", str(out_dir), "-p", "fp32", "-e", "cpu", "-c", str(out_dir / "cache")],
            check=True, capture_output=True,
        )  # fmt: skip
        self.convert_s = time.perf_counter() - started
        self.og = og
        self.model = og.Model(str(out_dir))
        self.batch_size = batch_size

    def generate(self, prompts: list[str], params: GenerationParams) -> list[list[Completion]]:
        """Each prompt repeated n times (its sampler returns one sequence per input on a
        CPU), in left-padded batches of at most 32 sequences, length-sorted."""
        og, tok = self.og, self.tokenizer
        stop_ids = stop_token_ids(tok, params.stop) or set()
        encoded = tok(prompts)["input_ids"]
        greedy = params.temperature == 0
        copies = 1 if greedy else params.n
        owner = [i for i in range(len(prompts)) for _ in range(copies)]
        order = sorted(range(len(owner)), key=lambda j: len(encoded[owner[j]]))
        out: list[list[Completion]] = [[] for _ in prompts]
        per_batch = min(self.batch_size, ORT_MAX_SEQUENCES)
        for start in range(0, len(order), per_batch):
            chunk = [owner[j] for j in order[start : start + per_batch]]
            width = max(len(encoded[i]) for i in chunk)
            ids = np.full((len(chunk), width), tok.pad_token_id, dtype=np.int64)
            for row, i in enumerate(chunk):
                ids[row, width - len(encoded[i]) :] = encoded[i]
            gp = og.GeneratorParams(self.model)
            options = {"max_length": width + params.max_new_tokens, "batch_size": len(chunk)}
            options["do_sample"] = not greedy
            if not greedy:
                options |= {"temperature": params.temperature, "top_p": params.top_p, "top_k": 0}
            if params.seed is not None:
                options["random_seed"] = params.seed
            gp.set_search_options(**options)
            generator = og.Generator(self.model, gp)
            generator.append_tokens(ids)
            steps = 0
            while not generator.is_done() and steps < params.max_new_tokens:
                generator.generate_next_token()
                steps += 1
                if steps % 4 == 0 and all(
                    _ended(generator.get_sequence(k)[width:], stop_ids, tok.eos_token_id)
                    for k in range(len(chunk))
                ):
                    break
            for row, i in enumerate(chunk):
                seq = list(generator.get_sequence(row)[width:])
                out[i].append(completion_from_ids(tok, seq, params.stop, stop_ids))
        return [group * (params.n // copies) for group in out]


def _ended(seq, stop_ids: set[int], eos: int | None) -> bool:
    return any(t in stop_ids or t == eos for t in seq)


def replay(backend: GenerationBackend, calls) -> tuple[int, float]:
    """Every recorded call, through ``backend``: (generated tokens, seconds)."""
    tokens, seconds = 0, 0.0
    for prompts, params in calls:
        started = time.perf_counter()
        out = backend.generate(prompts, params)
        seconds += time.perf_counter() - started
        tokens += sum(c.num_tokens for comps in out for c in comps)
    return tokens, seconds


def greedy_texts(backend: GenerationBackend, prompts: list[str], max_new: int) -> list[str]:
    params = GenerationParams(n=1, temperature=0.0, max_new_tokens=max_new)
    return [comps[0].text for comps in backend.generate(prompts, params)]


def step_statistics(
    backend: GenerationBackend, calls, golds: dict[str, str], count: int
) -> dict[str, list]:
    """Sample the search's prompts again (``count`` steps at least): per step its length in
    tokens, whether it is a valid step of the format, and for answer steps whether the
    answer is right."""
    lengths, valid, correct = [], [], []
    for prompts, params in calls:
        for prompt, comps in zip(prompts, backend.generate(prompts, params), strict=True):
            question = prompt.split(f"{USER_TAG}:\n", 1)[1].split(f"\n{ASSISTANT_TAG}", 1)[0]
            for comp in comps:
                lengths.append(comp.num_tokens)
                try:
                    step = parse_step(comp.text) if not comp.truncated else None
                except FormatError:
                    step = None
                valid.append(step is not None)
                if step is not None and step.answer is not None:
                    correct.append(is_correct(step.answer, golds[question]))
        if len(lengths) >= count:
            break
    return {"lengths": lengths, "valid": valid, "correct": correct}


def same_distribution(reference: dict[str, list], other: dict[str, list]) -> dict[str, float]:
    """Two-sample tests (p-values): lengths (Kolmogorov-Smirnov), validity and answer
    correctness (Fisher's exact test on the 2x2 counts)."""
    from scipy.stats import fisher_exact, ks_2samp

    def fisher(a: list[bool], b: list[bool]) -> float:
        return float(fisher_exact([[sum(a), len(a) - sum(a)], [sum(b), len(b) - sum(b)]])[1])

    return {
        "steps": (len(reference["lengths"]), len(other["lengths"])),
        "length_ks_p": float(ks_2samp(reference["lengths"], other["lengths"]).pvalue),
        "valid_share": (
            round(sum(reference["valid"]) / len(reference["valid"]), 3),
            round(sum(other["valid"]) / len(other["valid"]), 3),
        ),
        "valid_fisher_p": fisher(reference["valid"], other["valid"]),
        "answers": (len(reference["correct"]), len(other["correct"])),
        "correct_fisher_p": fisher(reference["correct"], other["correct"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", type=Path, default=Path("runs/toy/base-policy"))
    parser.add_argument("--problems", type=int, default=48)
    parser.add_argument("--rollouts", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-ort", action="store_true", help="leave onnxruntime-genai out")
    parser.add_argument("--steps", type=int, default=2000, help="sampled steps per backend")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    profile = load_profile("tiny")
    world = profile.toy.world
    levels = (2, 3, 4)
    problems = [
        p for lv in levels for p in problem_pool(lv, args.problems // len(levels), "train", world)
    ]
    batch = profile.policy.batch_size
    work = Path(tempfile.mkdtemp(prefix="rstar-bench-backends-"))
    policy = work / "policy"
    shutil.copytree(args.policy, policy)  # conversions are cached beside it: keep them out

    reference = TransformersBackend(policy, batch_size=batch, progress=False)
    recording = Recording(reference)
    with profile.sandbox.open() as sandbox:
        mcts = MCTS(recording, sandbox, profile.search, progress=False)
        mcts.search([SearchProblem(p.id, p.question, p.answer) for p in problems], args.rollouts)
    calls = recording.calls

    backends: dict[str, GenerationBackend] = {"transformers": reference}
    convert_s: dict[str, float] = {}
    for compute, workers in (("float32", 1), ("float32", args.threads), ("int8", 1)):
        name = f"ctranslate2-{compute}-{workers}-worker" + ("s" if workers > 1 else "")
        started = time.perf_counter()
        backends[name] = CTranslate2Backend(
            policy, batch_size=batch, compute_type=compute, workers=workers, progress=False
        )
        convert_s[name] = round(time.perf_counter() - started, 2)
    ort_note = "not run (--skip-ort)"
    if not args.skip_ort:
        ort = OrtGenAI(policy, work / "ort", batch)
        try:
            ort.generate(calls[0][0][:1], calls[0][1])
        except RuntimeError as exc:  # its CPU kernels need head sizes that are multiples of 16
            ort_note = f"cannot serve this checkpoint: {str(exc).splitlines()[0][:200]}"
            print("onnxruntime-genai:", ort_note, flush=True)
        else:
            ort_note = "served"
            backends["onnxruntime-genai-fp32"] = ort
            convert_s["onnxruntime-genai-fp32"] = round(ort.convert_s, 2)

    test = [
        build_prompt(p.question) for lv in range(1, 5) for p in problem_pool(lv, 50, "test", world)
    ]
    expected = greedy_texts(reference, test, profile.search.max_new_tokens)
    report: dict = {
        "policy": str(args.policy),
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "calls": len(calls),
        "sequences": sum(len(p) * params.n for p, params in calls),
        "convert_s": convert_s,
        "onnxruntime_genai_on_the_policy": ort_note,
        "backends": {},
    }
    base_tps = None
    for name, backend in backends.items():
        tokens, seconds = replay(backend, calls)
        tps = tokens / seconds
        base_tps = base_tps or tps
        same = sum(
            a == b
            for a, b in zip(
                greedy_texts(backend, test, profile.search.max_new_tokens), expected, strict=True
            )
        )
        report["backends"][name] = {
            "tokens": tokens,
            "seconds": round(seconds, 2),
            "tokens_per_s": round(tps),
            "ratio_to_transformers": round(tps / base_tps, 2),
            "greedy_same_as_transformers": f"{same}/{len(test)}",
        }
        print(name, report["backends"][name], flush=True)
    golds = {p.question: p.answer for p in problems}
    sampled = {
        name: step_statistics(backends[name], calls, golds, args.steps)
        for name in ("transformers", f"ctranslate2-float32-{args.threads}-workers")
    }
    report["sampled_steps"] = same_distribution(*sampled.values())
    print("sampled steps", report["sampled_steps"], flush=True)
    report["raw_decode_width128"] = raw_decode(args.policy, work, batch, test, args.skip_ort)
    print(json.dumps(report, indent=2))
    shutil.rmtree(work, ignore_errors=True)


def raw_decode(policy: Path, work: Path, batch: int, prompts: list[str], skip_ort: bool) -> dict:
    """tokens/s of each backend decoding a fixed amount with a width-128 model (doc)."""
    tokenizer = load_tokenizer(policy)
    model = build_tiny_llama(tokenizer, hidden=128, layers=4, heads=4, max_positions=1024)
    path = work / "width128"
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    params = GenerationParams(n=4, temperature=1.0, max_new_tokens=64, stop=("<never>",), seed=0)
    chosen = prompts[::3][:64]
    candidates: dict[str, GenerationBackend] = {
        "transformers": TransformersBackend(path, batch_size=batch, progress=False),
        "ctranslate2-float32-1-worker": CTranslate2Backend(path, batch_size=batch, progress=False),
    }
    if not skip_ort:
        candidates["onnxruntime-genai-fp32"] = OrtGenAI(path, work / "width128-ort", batch)
    result = {}
    for name, backend in candidates.items():
        started = time.perf_counter()
        out = backend.generate(chosen, params)
        seconds = time.perf_counter() - started
        tokens = sum(c.num_tokens for comps in out for c in comps)
        result[name] = {
            "tokens": tokens,
            "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds),
        }
        print(name, result[name], flush=True)
    return result


if __name__ == "__main__":
    main()
