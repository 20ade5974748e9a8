"""Running each released example's program in the sandbox reproduces its recorded <output>."""

from __future__ import annotations

import json

from rstar.format import Trajectory, format_output, parse_pair, parse_response
from rstar.sandbox import Sandbox
from tests.conftest import RELEASE_DIR

# Examples whose recorded output cannot come from their program, with the reason.
UNREPRODUCIBLE = {
    "sft_examples[0]": (
        "step 2 uses `y`, which is never defined: the program stops with a NameError before "
        "print(4); the recorded '4' is what the last step would print on its own"
    ),
}


def release_trajectories() -> dict[str, Trajectory]:
    """Every released trajectory that records an <output>, by where it comes from."""
    folder = RELEASE_DIR
    sft = json.loads((folder / "sft_examples.json").read_text(encoding="utf-8"))
    pairs = json.loads((folder / "ppm_pair_examples.json").read_text(encoding="utf-8"))
    found = {f"sft_examples[{i}]": parse_response(e["response"]) for i, e in enumerate(sft)}
    for i, pair in enumerate(pairs):
        for side in ("pos", "neg"):
            found[f"ppm_pair_examples[{i}].{side}"] = parse_pair(
                pair["prompt"], pair[side]
            ).trajectory
    return {name: traj for name, traj in found.items() if traj.output is not None}


def test_release_outputs_reproduce() -> None:
    trajectories = release_trajectories()
    assert len(trajectories) == 14
    with Sandbox(timeout=30.0, memory_mb=2048, workers=2) as sandbox:
        results = sandbox.run_many([traj.program for traj in trajectories.values()])
    produced = {}
    for (name, traj), result in zip(trajectories.items(), results, strict=True):
        # A failed run is recorded as its error alone (the release's IndentationError example).
        produced[name] = format_output(result.stdout, traj.program) if result.ok else result.error
    mismatches = {
        name: f"got {produced[name]!r}, recorded {traj.output!r}"
        for name, traj in trajectories.items()
        if produced[name] != traj.output
    }
    assert set(mismatches) == set(UNREPRODUCIBLE), mismatches
    assert produced["sft_examples[0]"] == "NameError: name 'y' is not defined"
