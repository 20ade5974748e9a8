"""A generation backend that answers a question with whole solutions whose programs ran.

``rstar serve --execute`` puts it behind the OpenAI-compatible server: a request whose
prompt is the policy's prompt of a question (``rstar.format.build_prompt``) gets ``n``
sampled solutions in the step format, every program run in the sandbox and its real output
in the text (``best_of_n``), as a model with a code interpreter would answer; any other
prompt (writing a new problem) is plain generation. The toy teacher solves this way, so its
wrong answers come from wrong reasoning, not from arithmetic done in its head.
"""

from __future__ import annotations

from collections.abc import Callable

from rstar.format import ANSWER_END, PROMPT_TEMPLATE
from rstar.models.base import Completion, GenerationBackend, GenerationParams
from rstar.sandbox import Sandbox
from rstar.search.best_of_n import best_of_n
from rstar.search.config import SearchConfig
from rstar.search.expansion import Expander, partial_text
from rstar.search.mcts import SearchProblem
from rstar.search.tree import ANSWER, Node

_HEAD, _TAIL = PROMPT_TEMPLATE.split("{question}")


def question_of(prompt: str) -> str | None:
    """The question of a policy prompt; None for any other prompt."""
    if prompt.startswith(_HEAD) and prompt.endswith(_TAIL) and len(prompt) > len(_HEAD + _TAIL):
        return prompt[len(_HEAD) : -len(_TAIL)]
    return None


class SolvingBackend:
    """``policy`` with the sandbox: question prompts get executed solutions (see above).

    ``config`` sets the step length and depth of a solution (its temperature, top_p and
    seed come from each request); ``count_tokens`` counts a solution's tokens for usage.
    """

    def __init__(
        self,
        policy: GenerationBackend,
        sandbox: Sandbox,
        config: SearchConfig,
        count_tokens: Callable[[str], int] | None = None,
    ) -> None:
        self.policy, self.sandbox, self.config = policy, sandbox, config
        self.count_tokens = count_tokens or (lambda text: 0)

    def generate(self, prompts: list[str], params: GenerationParams) -> list[list[Completion]]:
        questions = {i: q for i, p in enumerate(prompts) if (q := question_of(p)) is not None}
        others = [i for i in range(len(prompts)) if i not in questions]
        out: list[list[Completion]] = [[] for _ in prompts]
        if others:
            plain = self.policy.generate([prompts[i] for i in others], params)
            for i, completions in zip(others, plain, strict=True):
                out[i] = completions
        if questions:
            sampling = {"temperature": params.temperature, "top_p": params.top_p, "candidates": 1}
            if params.seed is not None:
                sampling["seed"] = params.seed
            expander = Expander(self.policy, self.sandbox, self.config.model_copy(update=sampling))
            problems = [SearchProblem(str(i), q) for i, q in questions.items()]
            for i, result in zip(questions, best_of_n(expander, problems, params.n), strict=True):
                out[i] = [self._completion(node) for node in result.terminals[: params.n]]
        return out

    def _completion(self, node: Node) -> Completion:
        text = partial_text(node)
        answered = node.terminal_reason == ANSWER
        stop = ANSWER_END if answered and text.endswith(ANSWER_END) else None
        return Completion(text, stop, not answered, self.count_tokens(text))
