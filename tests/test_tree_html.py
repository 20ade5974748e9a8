"""The search-tree HTML page: the embedded data, and what headless Chromium renders from it.

The Chromium tests load the page from a file with ``--dump-dom`` (the DOM after the page's
scripts ran) and read the dump with a small stdlib-based element tree.
"""

from __future__ import annotations

import json
import math
import re
import time

import pytest

from rstar.search.html import preview, render_tree_html, script_json
from rstar.search.tree import Node, Tree
from tests.browser import Element, dump_dom, needs_chromium, parse

QUESTION = "What is 1 + 2? <b>bold</b> & <script>document.title='question-pwned'</script>"
HOSTILE = (
    "# Step 1: </script><script>document.title='pwned';"
    "document.body.setAttribute('data-pwned','1')</script>\n"
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','2')\">\n<end_of_step>"
)


def small_tree() -> tuple[Tree, Node]:
    """A hand-made tree; returns it and the correct answer node (the chosen trajectory).

    0 root ── 1 code ── 2 final_code ── 3 answer 3 (correct, +1)
                     │               └─ 4 answer 4 (incorrect, -1)
                     └─ 7 truncated (-1)
           ├─ 5 code_error (-1)
           └─ 6 hostile code step, never visited, PPM 0.25
    """
    tree = Tree("p-7", QUESTION, gold="3")
    root = tree.root
    n1 = tree.add_child(root, 0, kind="code", text="<code>\n# Step 1: set x\nx = 2\n<end_of_step>")
    n1.ppm_score = 0.5
    n2 = tree.add_child(n1, 0, kind="final_code", text="print(x + 1)\n<end_of_code>", output="3")
    final = "\n<answer>The answer is \\boxed{{{}}}.<end_of_answer>"
    n3 = tree.add_child(
        n2, 0, kind="answer", text=final.format(3), answer="3", terminal=True,
        terminal_reason="answer", correct=True, reward=1.0,
    )  # fmt: skip
    n4 = tree.add_child(
        n2, 1, kind="answer", text=final.format(4), answer="4", terminal=True,
        terminal_reason="answer", correct=False, reward=-1.0,
    )  # fmt: skip
    n5 = tree.add_child(
        root, 2, kind="code", text="<code>\n# Step 1: use y\nprint(y)\n<end_of_step>",
        output="NameError: name 'y' is not defined", exec_ok=False, consecutive_errors=1,
        terminal=True, terminal_reason="code_error", reward=-1.0,
    )  # fmt: skip
    n6 = tree.add_child(root, 2, kind="code", text=HOSTILE, output="<i>out</i> & </script>")
    n6.ppm_score = 0.25
    n6.set_prior(0.25)
    n7 = tree.add_child(
        n1, 3, kind="code", text="# Step 2: a long", terminal=True, terminal_reason="truncated",
        reward=-1.0,
    )  # fmt: skip
    for leaf in (n3, n4, n5, n7):
        Tree.backpropagate(leaf, leaf.reward)
    return tree, n3


def rows(dom: Element) -> dict[int, Element]:
    found = [e for e in dom.iter() if "data-node-id" in e.attrs]
    by_id = {int(e.attrs["data-node-id"]): e for e in found}
    assert len(by_id) == len(found), "a node id is rendered twice"
    return by_id


def q_colour(row: Element) -> str:
    style = row.one("span", "q").attrs["style"]
    return re.search(r"background:\s*(rgb\([^)]*\))", style).group(1)


# --- the page as written ---------------------------------------------------------------------


def test_script_json_cannot_end_the_script_element():
    value = {"t": "</script><b>&\u2028x"}
    text = script_json(value)
    assert text == '{"t": "\\u003c/script\\u003e\\u003cb\\u003e\\u0026\\u2028x"}'
    assert json.loads(text) == value


def test_page_embeds_every_node_and_escapes_model_text():
    tree, chosen = small_tree()
    page = render_tree_html(tree, title="Tree <of> p-7 & co", chosen=chosen)
    # The only script end tags are those of the page's own two scripts.
    assert page.count("</script>") == 2
    assert "<img src=x" not in page
    assert "<title>Tree &lt;of&gt; p-7 &amp; co</title>" in page
    assert "What is 1 + 2? &lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;" in page
    data_text = re.search(
        r'<script type="application/json" id="tree-data">(.*?)</script>', page, re.S
    ).group(1)
    data = json.loads(data_text)
    assert data["chosen"] == 3
    assert [n["id"] for n in data["nodes"]] == list(range(8))
    assert [n["parent"] for n in data["nodes"]] == [None, 0, 1, 2, 2, 0, 0, 1]
    hostile = data["nodes"][6]
    assert hostile["text"] == HOSTILE
    assert hostile["output"] == "<i>out</i> & </script>"
    assert (hostile["visits"], hostile["q"], hostile["prior"], hostile["ppm"]) == (
        0,
        0.25,
        0.25,
        0.25,
    )
    root = data["nodes"][0]
    assert (root["visits"], root["value_sum"], root["q"]) == (4, -2.0, -0.5)
    assert [n["correct"] for n in data["nodes"]] == [
        None,
        None,
        None,
        True,
        False,
        None,
        None,
        None,
    ]
    assert [n["reason"] for n in data["nodes"]][3:] == [
        "answer", "answer", "code_error", None, "truncated",
    ]  # fmt: skip
    summary = re.search(r'<div class="summary">(.*?)</div>', page).group(1)
    assert summary == (
        "8 nodes · max depth 3 · root N 4 · 4 trajectories · 1 correct, 1 incorrect · "
        "1 code_error · 1 truncated"
    )
    assert '<div class="gold">Gold answer: <code>3</code></div>' in page


def test_non_finite_numbers_are_shown_as_absent():
    tree, _ = small_tree()
    tree.node(1).ppm_score = math.nan
    tree.node(6).ppm_score = math.inf
    page = render_tree_html(tree)
    data = json.loads(re.search(r'id="tree-data">(.*?)</script>', page, re.S).group(1))
    assert (data["nodes"][1]["ppm"], data["nodes"][6]["ppm"]) == (None, None)
    assert data["chosen"] is None
    assert "<title>Search tree: p-7</title>" in page


def test_chosen_node_must_belong_to_the_tree():
    tree, _ = small_tree()
    _, chosen = small_tree()
    with pytest.raises(
        ValueError, match="chosen node 3 is not a node of the tree of problem 'p-7'"
    ):
        render_tree_html(tree, chosen=chosen)


def test_preview_labels():
    tree, _ = small_tree()
    assert preview(tree.root) == "question"
    assert preview(tree.node(1)) == "# Step 1: set x"
    assert preview(tree.node(3)) == "answer: 3"
    long = tree.add_child(tree.root, 4, text="\n\n# " + "a" * 200)
    assert preview(long) == "# " + "a" * 87 + "…"
    assert len(preview(long)) == 90
    assert preview(tree.add_child(tree.root, 4, text="<code>\n")) == "(empty step)"


# --- the page as Chromium renders it ---------------------------------------------------------


@needs_chromium
def test_rendered_tree_marks_outcomes_values_and_chosen_path(tmp_path):
    tree, chosen = small_tree()
    page = tmp_path / "tree.html"
    page.write_text(render_tree_html(tree, title="Tree <of> p-7", chosen=chosen), encoding="utf-8")
    dom = parse(dump_dom(page, tmp_path))
    by_id = rows(dom)
    assert sorted(by_id) == list(range(len(tree)))

    outcomes = {i: r.attrs.get("data-outcome") for i, r in by_id.items()}
    assert outcomes == {
        0: None, 1: None, 2: None, 3: "correct", 4: "wrong", 5: "code_error", 6: None,
        7: "truncated",
    }  # fmt: skip
    assert "✓ correct" in by_id[3].text and {"correct"} <= by_id[3].classes
    assert "✗ incorrect" in by_id[4].text and {"wrong"} <= by_id[4].classes
    assert by_id[5].one("span", "badge").text == "code_error"
    assert by_id[7].one("span", "badge").text == "truncated"
    marked = {i for i, r in by_id.items() if "✓" in r.text or "✗" in r.text}
    assert marked == {3, 4}

    # N, Q and PPM labels, and Q colours at the ends and the middle of the scale.
    assert [s.text for s in by_id[0].find_all("span", "stat")] == ["N 4"]
    assert by_id[0].one("span", "q").text == "-0.50"
    assert [s.text for s in by_id[1].find_all("span", "stat")] == ["N 3", "PPM +0.50"]
    assert by_id[1].one("span", "q").text == "-0.33"
    assert [s.text for s in by_id[6].find_all("span", "stat")] == ["N 0", "PPM +0.25"]
    assert "unvisited" in by_id[6].classes
    assert q_colour(by_id[3]) == "rgb(46, 125, 50)"
    assert q_colour(by_id[4]) == "rgb(198, 40, 40)"
    assert q_colour(by_id[2]) == "rgb(158, 158, 158)"

    on_path = {i for i, r in by_id.items() if "on-chosen" in r.classes}
    assert on_path == {0, 1, 2, 3}
    assert {i for i, r in by_id.items() if "★ chosen" in r.text} == {3}
    # Without a fragment the chosen node is selected and shown.
    assert {i for i, r in by_id.items() if "selected" in r.classes} == {3}
    assert dom.one("pre", "step-text").text == tree.node(3).text


@needs_chromium
def test_hostile_text_is_shown_not_run(tmp_path):
    tree, chosen = small_tree()
    page = tmp_path / "tree.html"
    page.write_text(render_tree_html(tree, title="Tree <of> p-7", chosen=chosen), encoding="utf-8")
    markup = dump_dom(page, tmp_path, "#node=6")
    dom = parse(markup)
    body = dom.one("body")
    assert "data-pwned" not in body.attrs
    assert dom.one("title").text == "Tree <of> p-7"
    assert dom.find_all("img") == []
    assert dom.one("div", "question").text == QUESTION
    assert rows(dom)[6].one("span", "label").text == preview(tree.node(6))
    assert dom.one("pre", "step-text").text == HOSTILE
    assert dom.one("pre", "step-output").text == "<i>out</i> & </script>"
    assert "&lt;/script&gt;&lt;script&gt;document.title='pwned'" in markup


@needs_chromium
def test_url_fragment_selects_a_node(tmp_path):
    tree, chosen = small_tree()
    page = tmp_path / "tree.html"
    page.write_text(render_tree_html(tree, chosen=chosen), encoding="utf-8")
    dom = parse(dump_dom(page, tmp_path, "#node=5"))
    assert {i for i, r in rows(dom).items() if "selected" in r.classes} == {5}
    details = next(e for e in dom.iter() if e.attrs.get("id") == "details")
    assert details.one("h2").text == "Node 5 · code · code_error"
    assert details.one("pre", "step-text").text == tree.node(5).text
    output = details.one("pre", "step-output")
    assert output.text == "NameError: name 'y' is not defined"
    assert "error" in output.classes
    fields = {tr.one("th").text: tr.one("td").text for tr in details.find_all("tr")}
    assert fields == {
        "kind": "code", "depth": "1", "rollout": "2", "N (visits)": "1", "Q": "-1.00",
        "value sum": "-1.0000", "initial value": "0.00", "PPM score": "–", "exec ok": "false",
        "consecutive errors": "1", "terminal reason": "code_error", "answer": "–",
        "correct": "–", "reward": "-1", "on chosen path": "false",
    }  # fmt: skip
    assert [a.text for a in details.one("div", "path").find_all("a")] == ["root"]
    # A fragment naming no node falls back to the chosen one.
    dom = parse(dump_dom(page, tmp_path, "#node=99"))
    assert {i for i, r in rows(dom).items() if "selected" in r.classes} == {3}


@needs_chromium
def test_two_thousand_nodes_render_within_seconds(tmp_path):
    tree = Tree("big", "How many nodes?")
    for i in range(1, 2000):
        node = tree.add_child(tree.node((i - 1) // 3), i, kind="code", text=f"# Step: n{i}\n")
        if i % 3 == 0:
            node.terminal, node.terminal_reason, node.correct = True, "answer", i % 2 == 0
            Tree.backpropagate(node, 1.0 if node.correct else -1.0)
    page = tmp_path / "big.html"
    page.write_text(render_tree_html(tree), encoding="utf-8")
    start = time.perf_counter()
    markup = dump_dom(page, tmp_path)
    elapsed = time.perf_counter() - start
    by_id = rows(parse(markup))
    assert sorted(by_id) == list(range(2000))
    assert by_id[1995].attrs["data-outcome"] == "wrong"
    assert by_id[1995].one("span", "label").text == "# Step: n1995"
    assert elapsed < 15, f"Chromium took {elapsed:.1f} s to render 2,000 nodes"
