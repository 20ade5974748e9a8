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
