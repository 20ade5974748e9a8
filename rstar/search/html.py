"""A search tree as one self-contained HTML page (``rstar solve --tree tree.html``).

The page needs no network: CSS and JS are inline and the tree travels as JSON inside a
``<script type="application/json">`` tag. The left pane lists the tree as a collapsible
nested list (one row per node, coloured by Q on a red → grey → green scale over [-1, 1]);
the right pane shows the selected node. ``#node=<id>`` in the URL selects a node on load,
and clicking a node writes it there, so a link points at one step.

Model-written text is hostile. It never reaches the page as markup: Python escapes what it
writes into the HTML, the JSON escapes ``<``, ``>`` and ``&`` (so no ``</script>`` can end
the data block), and the script puts every string into the DOM as ``textContent``.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter

from rstar.search.tree import ANSWER, Node, Tree

_PREVIEW_CHARS = 90

# Characters that must not appear literally in JSON inside a <script> element.
_SCRIPT_SAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


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
    return _PAGE.format(
        title=html.escape(title),
        question=html.escape(tree.question),
        gold=_gold_html(tree.gold),
        summary=html.escape(_summary(tree)),
        data=script_json(data),
        css=_CSS,
        js=_JS,
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


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header>
  <h1>{title}</h1>
  <div class="question">{question}</div>
  {gold}
  <div class="summary">{summary}</div>
  <div class="toolbar">
    <button type="button" id="expand-all">Expand all</button>
    <button type="button" id="collapse-all">Collapse all</button>
    <button type="button" id="show-chosen">Show chosen path</button>
    <span class="legend">
      <span>Q</span><span class="lo">−1</span><span class="scale"></span><span class="hi">+1</span>
      <span class="badge correct">✓ correct</span><span class="badge wrong">✗ incorrect</span>
      <span class="badge ended">other end</span><span class="chosen-key">chosen path</span>
      <span class="unvisited-key">N = 0 (not visited)</span>
    </span>
  </div>
</header>
<main>
  <section id="tree" aria-label="search tree"><noscript>This view needs JavaScript.</noscript>
  </section>
  <section id="details" aria-label="selected node"><p class="hint">Click a node.</p></section>
</main>
<script type="application/json" id="tree-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""

_CSS = """
* { box-sizing: border-box; }
body { margin: 0; height: 100vh; display: flex; flex-direction: column;
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; }
header { padding: 10px 16px; border-bottom: 1px solid #ddd; background: #fafafa; }
h1 { font-size: 17px; margin: 0 0 6px; }
.question { white-space: pre-wrap; max-height: 7.5em; overflow: auto; margin-bottom: 4px; }
.gold, .summary { color: #555; font-size: 13px; }
.toolbar { margin-top: 6px; display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
.toolbar button { font: inherit; font-size: 12px; padding: 2px 8px; cursor: pointer; }
.legend { display: inline-flex; gap: 6px; align-items: center; margin-left: 12px;
  font-size: 12px; color: #555; }
.legend .scale { width: 120px; height: 12px; border-radius: 3px;
  background: linear-gradient(to right, #c62828, #9e9e9e, #2e7d32); }
.chosen-key { background: #fff3c4; padding: 0 6px; border-radius: 3px; }
.unvisited-key { opacity: .5; }
main { flex: 1; display: flex; min-height: 0; }
#tree { flex: 1 1 58%; overflow: auto; padding: 8px 8px 40px; border-right: 1px solid #ddd; }
#details { flex: 1 1 42%; overflow: auto; padding: 10px 16px; }
ul.kids { list-style: none; margin: 0; padding-left: 18px; border-left: 1px dotted #ccc;
  margin-left: 7px; }
#tree > ul.kids { border-left: none; padding-left: 0; margin-left: 0; }
li.collapsed > ul.kids { display: none; }
.row { display: flex; align-items: center; gap: 6px; padding: 1px 4px; margin: 1px 0;
  content-visibility: auto; contain-intrinsic-size: auto 22px;
  border: 2px solid transparent; border-radius: 4px; cursor: pointer; white-space: nowrap; }
.row:hover { background: #f0f4fa; }
.row.unvisited { opacity: .5; }
.row.on-chosen { background: #fff3c4; }
.row.selected { background: #dbe8ff; border-color: #3d6fd6; }
.row.correct { border-color: #2e7d32; }
.row.wrong { border-color: #c62828; }
.row.ended { border-color: #bbb; border-style: dashed; }
.row.selected.correct, .row.selected.wrong { box-shadow: 0 0 0 2px #3d6fd6; }
.toggle { width: 14px; flex: none; color: #666; text-align: center; font-size: 11px; }
.q { flex: none; min-width: 46px; text-align: center; border-radius: 3px; padding: 0 4px;
  font: 12px/1.5 ui-monospace, Menlo, Consolas, monospace; }
.stat { flex: none; color: #444; font-size: 12px; font-family: ui-monospace, monospace; }
.kind { flex: none; color: #777; font-size: 11px; }
.label { overflow: hidden; text-overflow: ellipsis; font-family: ui-monospace, monospace;
  font-size: 12px; color: #333; }
.badge { flex: none; font-size: 11px; padding: 0 5px; border-radius: 8px; color: #fff;
  background: #777; }
.badge.correct { background: #2e7d32; }
.badge.wrong { background: #c62828; }
.badge.ended { background: #8d8d8d; }
.badge.code_error { background: #e65100; }
.badge.answer { background: #1565c0; }
.badge.chosen { background: #b8860b; }
#details h2 { font-size: 16px; margin: 0 0 6px; }
.path a { color: #3d6fd6; cursor: pointer; text-decoration: underline; }
table.fields { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
table.fields th { text-align: left; color: #666; font-weight: normal; padding: 1px 12px 1px 0; }
table.fields td { font-family: ui-monospace, monospace; }
#details h3 { font-size: 13px; margin: 12px 0 4px; color: #555; }
pre { margin: 0; padding: 8px; background: #f6f8fa; border: 1px solid #e1e4e8;
  border-radius: 4px; white-space: pre-wrap; word-break: break-word;
  font: 12px/1.45 ui-monospace, Menlo, Consolas, monospace; }
pre.error { background: #fff1f0; border-color: #f3c1bd; }
.hint { color: #888; }
"""

_JS = r"""
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("tree-data").textContent);
  const nodes = data.nodes;
  const kids = nodes.map(() => []);
  for (const n of nodes) if (n.parent !== null) kids[n.parent].push(n.id);
  const onChosen = new Set();
  for (let id = data.chosen; id !== null; id = nodes[id].parent) onChosen.add(id);
  const rows = [], items = [];
  let selected = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmt(x) {
    return x === null ? "–" : (x > 0 ? "+" : "") + x.toFixed(2);
  }
  // Diverging scale over [-1, 1]: red (#c62828) -> grey (#9e9e9e) -> green (#2e7d32).
  function qColor(q) {
    const t = Math.max(-1, Math.min(1, q === null ? 0 : q));
    const mid = [158, 158, 158], end = t < 0 ? [198, 40, 40] : [46, 125, 50], a = Math.abs(t);
    return "rgb(" + mid.map((m, i) => Math.round(m + (end[i] - m) * a)).join(",") + ")";
  }
  // How a terminal ended: [row class, badge class, badge text]; null for open nodes.
  function outcome(n) {
    if (!n.terminal) return null;
    if (n.correct === true) return ["correct", "correct", "✓ correct"];
    if (n.correct === false) return ["wrong", "wrong", "✗ incorrect"];
    if (n.reason === "answer") return ["answer", "answer", "answer"];
    return ["ended", "ended " + n.reason, n.reason];
  }

  function buildRow(n) {
    const row = el("div", "row");
    row.dataset.nodeId = n.id;
    row.appendChild(el("span", "toggle", kids[n.id].length ? "▾" : ""));
    const q = el("span", "q", fmt(n.q));
    q.style.background = qColor(n.q);
    q.style.color = "#fff";
    q.title = "Q (value sum / N)";
    row.appendChild(q);
    row.appendChild(el("span", "stat", "N " + n.visits));
    if (n.ppm !== null) row.appendChild(el("span", "stat", "PPM " + fmt(n.ppm)));
    row.appendChild(el("span", "kind", "#" + n.id + " " + n.kind));
    const end = outcome(n);
    if (end) {
      row.classList.add(end[0]);
      row.dataset.outcome = n.correct === null ? n.reason : end[0];
      row.appendChild(el("span", "badge " + end[1], end[2]));
    }
    if (n.id === data.chosen) row.appendChild(el("span", "badge chosen", "★ chosen"));
    if (onChosen.has(n.id)) row.classList.add("on-chosen");
    if (n.visits === 0) row.classList.add("unvisited");
    row.appendChild(el("span", "label", n.preview));
    return row;
  }

  function render() {
    const root = el("ul", "kids");
    const stack = [[0, root]];
    while (stack.length) {
      const [id, parentList] = stack.pop();
      const li = el("li");
      const row = buildRow(nodes[id]);
      li.appendChild(row);
      rows[id] = row;
      items[id] = li;
      parentList.appendChild(li);
      if (kids[id].length) {
        const ul = el("ul", "kids");
        li.appendChild(ul);
        for (let i = kids[id].length - 1; i >= 0; i--) stack.push([kids[id][i], ul]);
      }
    }
    const pane = document.getElementById("tree");
    pane.replaceChildren(root);
  }

  function setCollapsed(id, collapsed) {
    if (!kids[id].length) return;
    items[id].classList.toggle("collapsed", collapsed);
    rows[id].firstChild.textContent = collapsed ? "▸" : "▾";
  }
  function reveal(id) {
    for (let p = nodes[id].parent; p !== null; p = nodes[p].parent) setCollapsed(p, false);
  }

  function field(table, name, value) {
    const tr = el("tr");
    tr.appendChild(el("th", null, name));
    tr.appendChild(el("td", null, value === null || value === undefined ? "–" : String(value)));
    table.appendChild(tr);
  }
  function link(id, text) {
    const a = el("a", null, text);
    a.dataset.goto = id;
    return a;
  }

  function showDetails(n) {
    const pane = document.getElementById("details");
    const parts = [];
    const end = outcome(n);
    parts.push(el("h2", null, "Node " + n.id + " · " + n.kind + (end ? " · " + end[2] : "")));
    const path = el("div", "path");
    const ids = [];
    for (let id = n.id; id !== null; id = nodes[id].parent) ids.unshift(id);
    ids.forEach((id, i) => {
      if (i) path.appendChild(document.createTextNode(" › "));
      const name = id ? String(id) : "root";
      path.appendChild(id === n.id ? el("span", null, name) : link(id, name));
    });
    parts.push(path);
    const table = el("table", "fields");
    field(table, "kind", n.kind);
    field(table, "depth", n.depth);
    field(table, "rollout", n.rollout);
    field(table, "N (visits)", n.visits);
    field(table, "Q", fmt(n.q));
    field(table, "value sum", n.value_sum === null ? null : n.value_sum.toFixed(4));
    field(table, "initial value", fmt(n.prior));
    field(table, "PPM score", n.ppm === null ? null : n.ppm.toFixed(4));
    field(table, "exec ok", n.exec_ok);
    field(table, "consecutive errors", n.consecutive_errors);
    field(table, "terminal reason", n.reason);
    field(table, "answer", n.answer);
    field(table, "correct", n.correct);
    field(table, "reward", n.reward);
    field(table, "on chosen path", onChosen.has(n.id));
    parts.push(table);
    if (kids[n.id].length) {
      const children = el("div", "path");
      children.appendChild(document.createTextNode("children: "));
      kids[n.id].forEach((id, i) => {
        if (i) children.appendChild(document.createTextNode(", "));
        children.appendChild(link(id, String(id)));
      });
      parts.push(children);
    }
    if (n.parent === null) {
      parts.push(el("h3", null, "Question"));
      parts.push(el("pre", "step-text", document.querySelector(".question").textContent));
    } else {
      parts.push(el("h3", null, "Step text"));
      parts.push(el("pre", "step-text", n.text));
      if (n.output !== "") {
        parts.push(el("h3", null, n.exec_ok ? "Output" : "Error"));
        parts.push(el("pre", "step-output" + (n.exec_ok ? "" : " error"), n.output));
      }
    }
    pane.replaceChildren(...parts);
  }

  function select(id, scroll) {
    if (selected !== null) rows[selected].classList.remove("selected");
    selected = id;
    rows[id].classList.add("selected");
    reveal(id);
    showDetails(nodes[id]);
    if (scroll) rows[id].scrollIntoView({block: "center"});
  }
  function fromHash() {
    const m = /^#node=(\d+)$/.exec(location.hash);
    return m && Number(m[1]) < nodes.length ? Number(m[1]) : null;
  }
  function remember(id) {
    try { history.replaceState(null, "", "#node=" + id); } catch (e) { /* file:// quirks */ }
  }

  render();
  document.getElementById("tree").addEventListener("click", (ev) => {
    const row = ev.target.closest(".row");
    if (!row) return;
    const id = Number(row.dataset.nodeId);
    if (ev.target.classList.contains("toggle")) {
      setCollapsed(id, !items[id].classList.contains("collapsed"));
      return;
    }
    select(id, false);
    remember(id);
  });
  document.getElementById("details").addEventListener("click", (ev) => {
    const a = ev.target.closest("a[data-goto]");
    if (!a) return;
    const id = Number(a.dataset.goto);
    select(id, true);
    remember(id);
  });
  document.getElementById("expand-all").onclick = () => {
    nodes.forEach((n) => setCollapsed(n.id, false));
  };
  document.getElementById("collapse-all").onclick = () => {
    nodes.forEach((n) => setCollapsed(n.id, n.id !== 0));
  };
  document.getElementById("show-chosen").hidden = data.chosen === null;
  document.getElementById("show-chosen").onclick = () => {
    if (data.chosen === null) return;
    nodes.forEach((n) => setCollapsed(n.id, !onChosen.has(n.id)));
    select(data.chosen, true);
  };
  window.addEventListener("hashchange", () => {
    const id = fromHash();
    if (id !== null) select(id, true);
  });
  const initial = fromHash();
  select(initial !== null ? initial : (data.chosen !== null ? data.chosen : 0), true);
})();
"""
