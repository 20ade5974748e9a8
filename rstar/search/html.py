"""A search tree as one self-contained HTML page (``rstar solve --tree tree.html``).

The page needs no network: its CSS and JS (``rstar/search/assets/``, package data) are
inlined and the tree travels as JSON inside a ``<script type="application/json">`` tag.
The left pane lists the tree as a collapsible nested list (one row per node, coloured by Q
on a red → grey → green scale over [-1, 1]); the right pane shows the selected node.
``#node=<id>`` in the URL selects a node on load, and clicking a node writes it there, so
a link points at one step.

Model-written text is hostile. It never reaches the page as markup: Python escapes what it
writes into the HTML, the JSON escapes ``<``, ``>`` and ``&`` (so no ``</script>`` can end
the data block), and the script puts every string into the DOM as ``textContent``.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from functools import cache
from importlib import resources

from rstar.search.tree import ANSWER, Node, Tree

_PREVIEW_CHARS = 90

# Characters that must not appear literally in JSON inside a <script> element.
_SCRIPT_SAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


@cache
def _asset(name: str) -> str:
    """A file of the page (``tree.html``, ``tree.css``, ``tree.js``), shipped as package data."""
    return (resources.files("rstar.search") / "assets" / name).read_text(encoding="utf-8")


def render_tree_html(tree: Tree, title: str | None = None, chosen: Node | None = None) -> str:
    """The whole page for ``tree``; ``chosen`` (a node of it) marks the answer's trajectory."""
    if chosen is not None and (
        chosen.node_id >= len(tree) or tree.node(chosen.node_id) is not chosen
    ):
        raise ValueError(
            f"chosen node {chosen.node_id} is not a node of the tree of problem "
            f"{tree.problem_id!r}: pass a node returned by this tree's search"
        )
    title = title or f"Search tree: {tree.problem_id}"
    data = {
        "chosen": chosen.node_id if chosen is not None else None,
        "nodes": [_node_record(node) for node in tree],
    }
    return _asset("tree.html").format(
        title=html.escape(title),
        question=html.escape(tree.question),
        gold=_gold_html(tree.gold),
        summary=html.escape(_summary(tree)),
        data=script_json(data),
        css=_asset("tree.css"),
        js=_asset("tree.js"),
    )


def script_json(value: object) -> str:
    """``value`` as JSON that is safe as the content of a ``<script>`` element."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False).translate(_SCRIPT_SAFE)


def preview(node: Node) -> str:
    """A one-line label for the node's row: its answer, or the first line of its step."""
    if node.parent is None:
        return "question"
    if node.answer is not None:
        return f"answer: {node.answer}"
    for line in node.text.splitlines():
        line = line.replace("<code>", "").strip()
        if line:
            return line if len(line) <= _PREVIEW_CHARS else line[: _PREVIEW_CHARS - 1] + "…"
    return "(empty step)"


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: such a value (e.g. from a broken PPM) shows as absent."""
    return value if value is not None and math.isfinite(value) else None


def _node_record(node: Node) -> dict[str, object]:
    return {
        "id": node.node_id,
        "parent": node.parent.node_id if node.parent is not None else None,
        "depth": node.depth,
        "rollout": node.rollout,
        "kind": str(node.kind),
        "preview": preview(node),
        "text": node.text,
        "output": node.output,
        "exec_ok": node.exec_ok,
        "consecutive_errors": node.consecutive_errors,
        "terminal": node.terminal,
        "reason": node.terminal_reason,
        "answer": node.answer,
        "correct": node.correct,
        "reward": _finite(node.reward),
        "visits": node.visits,
        "value_sum": _finite(node.value_sum),
        "q": _finite(node.q),
        "prior": _finite(node.prior),
        "ppm": _finite(node.ppm_score),
    }


def _gold_html(gold: str | None) -> str:
    if gold is None:
        return ""
    return f'<div class="gold">Gold answer: <code>{html.escape(gold)}</code></div>'


def _summary(tree: Tree) -> str:
    """Counts for the header: size, depth, and how the reached trajectories ended."""
    reached = tree.terminals()
    reasons = Counter(node.terminal_reason for node in reached if node.terminal_reason != ANSWER)
    answers = [node for node in reached if node.terminal_reason == ANSWER]
    parts = [
        f"{len(tree)} nodes",
        f"max depth {max(node.depth for node in tree)}",
        f"root N {tree.root.visits}",
        f"{len(reached)} trajectories",
    ]
    graded = [node for node in answers if node.correct is not None]
    if graded:
        right = sum(1 for node in graded if node.correct)
        parts.append(f"{right} correct, {len(graded) - right} incorrect")
    if len(answers) > len(graded):
        parts.append(f"{len(answers) - len(graded)} ungraded answers")
    parts += [f"{count} {reason}" for reason, count in sorted(reasons.items())]
    return " · ".join(parts)
