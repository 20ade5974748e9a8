"""The search tree of one problem: nodes, UCT selection and back-propagation (docs/method.md §2).

Values follow the paper exactly. A node keeps ``value_sum`` (the paper's q(s)) and
``visits`` (N(s)); ``Q(s) = q(s) / N(s)``. A new node starts at q(s)_0 = 0 (terminal-guided
annotation) or at its PPM score (PPM-augmented annotation), with N = 0. When a rollout
reaches a terminal node with reward r, every node on the path root → terminal, the terminal
included, gets ``q += r`` and ``N += 1`` (Eq. 2).

Selection among the children of a node, by ``UCT(s) = Q(s) + c * sqrt(ln N_parent / N(s))``:

- children that are *closed* are skipped: a terminal child that has been visited once
  (its reward is final), or an expanded child all of whose children are closed;
- an unvisited child has an infinite UCT and is taken first; among several unvisited
  children the one with the highest initial value q(s)_0 wins (the PPM score in
  PPM-augmented search; all 0 in terminal-guided search), ties going to the earliest
  generated. So every candidate is tried once before any is tried twice, and the PPM
  decides the order in which they are tried;
- otherwise the child with the highest UCT wins, ties going to the earliest generated.
A node whose children are all closed is closed itself (exhausted); a tree whose root is
closed has nothing left to search.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from rstar.format import Step

# terminal_reason values
ANSWER = "answer"
CODE_ERROR = "code_error"
MAX_DEPTH = "max_depth"
TRUNCATED = "truncated"
MALFORMED = "malformed"


@dataclass(eq=False)
class Node:
    """One step of a solution (the root holds the question and no step)."""

    node_id: int
    parent: Node | None
    depth: int
    rollout: int
    kind: str = "root"
    step: Step | None = None
    text: str = ""
    output: str = ""
    exec_ok: bool = True
    consecutive_errors: int = 0
    terminal: bool = False
    terminal_reason: str | None = None
    answer: str | None = None
    correct: bool | None = None
    reward: float | None = None
    visits: int = 0
    value_sum: float = 0.0
    prior: float = 0.0
    ppm_score: float | None = None
    expanded: bool = False
    children: list[Node] = field(default_factory=list)

    @property
    def q(self) -> float:
        """Q(s) = q(s) / N(s); an unvisited node reports its initial value q(s)_0."""
        return self.value_sum / self.visits if self.visits else self.value_sum

    def set_prior(self, value: float) -> None:
        """q(s)_0: the value a new node starts from (Eq. 3 in PPM-augmented search)."""
        self.prior = value
        self.value_sum = value

    @property
    def closed(self) -> bool:
        """Nothing is left to explore below this node."""
        if self.terminal:
            return self.visits > 0
        return self.expanded and all(child.closed for child in self.children)

    def steps(self) -> list[Step]:
        """The parsed steps from the first one down to this node."""
        return [node.step for node in self.path() if node.step is not None]

    def path(self) -> list[Node]:
        """The nodes from the first step down to this one (the root excluded)."""
        nodes: list[Node] = []
        node: Node | None = self
        while node is not None and node.parent is not None:
            nodes.append(node)
            node = node.parent
        return nodes[::-1]


def uct(child: Node, parent_visits: int, c: float) -> float:
    """UCT of a visited child; unvisited children are handled by :func:`select_child`."""
    return child.q + c * math.sqrt(math.log(parent_visits) / child.visits)


def select_child(node: Node, c: float) -> Node | None:
    """The child a rollout descends into, or None when every child is closed."""
    open_children = [child for child in node.children if not child.closed]
    if not open_children:
        return None
    unvisited = [child for child in open_children if child.visits == 0]
    if unvisited:
        return max(unvisited, key=lambda child: child.prior)  # max keeps the first of ties
    return max(open_children, key=lambda child: uct(child, node.visits, c))


class Tree:
    """The search tree of one problem; node ids are assigned in creation order."""

    def __init__(self, problem_id: str, question: str, gold: str | None = None) -> None:
        self.problem_id = problem_id
        self.question = question
        self.gold = gold
        self.root = Node(node_id=0, parent=None, depth=0, rollout=-1)
        self._nodes: list[Node] = [self.root]

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes)

    def node(self, node_id: int) -> Node:
        return self._nodes[node_id]

    def add_child(self, parent: Node, rollout: int, **fields: object) -> Node:
        """Append a new child of ``parent``; ``fields`` set the step's attributes.

        Its initial value is set later with :meth:`Node.set_prior` once the PPM has scored it.
        """
        child = Node(
            node_id=len(self._nodes), parent=parent, depth=parent.depth + 1, rollout=rollout
        )
        for name, value in fields.items():
            setattr(child, name, value)
        parent.children.append(child)
        self._nodes.append(child)
        return child

    def descend(self, start: Node, c: float) -> Node | None:
        """Follow UCT from ``start`` to a node that is unexpanded or terminal.

        Returns None when ``start`` is closed (nothing left to explore below it).
        """
        node = start
        while node.expanded and not node.terminal:
            child = select_child(node, c)
            if child is None:
                return None
            node = child
        return node

    @staticmethod
    def backpropagate(leaf: Node, reward: float) -> None:
        """Eq. 2: every node from ``leaf`` up to the root gets q += reward and N += 1."""
        node: Node | None = leaf
        while node is not None:
            node.value_sum += reward
            node.visits += 1
            node = node.parent

    def terminals(self) -> list[Node]:
        """Terminal nodes that were reached (visited): one per finished trajectory."""
        return [node for node in self._nodes if node.terminal and node.visits > 0]
