"""The self-evolution rounds (docs/method.md §4) as stages an orchestrator calls one by one.

``rstar.evolve.stages`` holds the stages (search shards, curation, training, evaluation,
registration), ``rstar.evolve.round_models`` how a round finds the models of the previous
one, ``rstar.evolve.round_problems`` the problems it searches and their shards,
``rstar.evolve.report`` the round metrics and the per-round table. The settings are the
profile's ``evolve:`` section (``rstar.config``). Prefect wiring lives
outside the library, in ``tasks/`` and ``flows/``.
"""
