"""The embedded toy world: procedural arithmetic word problems and a tiny base policy.

- :mod:`rstar.toy.world`: problems by level (= number of steps), ids, train/test split.
- :mod:`rstar.toy.templates`: the scenarios and sentences problems are drawn from.
- :mod:`rstar.toy.tokenizer`, :mod:`rstar.toy.model`, :mod:`rstar.toy.bootstrap`: the BPE
  tokenizer, the tiny Llama, and the base policy trained from scratch with them.
- :mod:`rstar.toy.evaluate_base`: greedy accuracy per level through sandbox and grader.
- :mod:`rstar.toy.config`: ``ToyWorldConfig``, ``BootstrapConfig`` (a profile's ``toy:``).
"""
