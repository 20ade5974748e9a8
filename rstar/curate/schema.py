"""Row shapes of the curated training data (our own and the imported released data)."""

from __future__ import annotations

import pyarrow as pa

# Policy SFT: prompt/completion rows (TRL masks the prompt). Provenance columns are null
# for imported rows.
SFT_SCHEMA = pa.schema(
    [
        pa.field("problem_id", pa.string()),
        pa.field("question", pa.string()),
        pa.field("prompt", pa.string()),  # rstar.format.build_prompt(question)
        pa.field("completion", pa.string()),  # the steps, with the output block after final code
        pa.field("round", pa.int16()),
        pa.field("stage", pa.string()),
        pa.field("leaf_id", pa.int32()),
        pa.field("avg_q", pa.float64()),
        pa.field("min_q", pa.float64()),
    ]
)

STEP = "step"  # same-prefix pair of sibling steps
FINAL = "final"  # relaxed pair of full trajectories (the final-answer step)

# PPM preference pairs: prompt/chosen/rejected rows (TRL's reward-model format).
PAIR_SCHEMA = pa.schema(
    [
        pa.field("problem_id", pa.string()),
        pa.field("kind", pa.string()),  # STEP or FINAL
        pa.field("prompt", pa.string()),  # question prompt + the shared prefix steps
        pa.field("chosen", pa.string()),
        pa.field("rejected", pa.string()),
        pa.field("pos_count", pa.int32()),  # positives selected in the pair's group
        pa.field("neg_count", pa.int32()),  # negatives selected in the pair's group
        pa.field("round", pa.int16()),
        pa.field("chosen_stage", pa.string()),
        pa.field("chosen_node", pa.int32()),  # step pairs: the step's node; final: the leaf
        pa.field("rejected_stage", pa.string()),
        pa.field("rejected_node", pa.int32()),
        pa.field("chosen_q", pa.float64()),  # step pairs: Q of the step; final: average Q
        pa.field("rejected_q", pa.float64()),
    ]
)
