"""The self-evolution rounds (DESIGN §1.4) as stages an orchestrator calls one by one.

``rstar.evolve.stages`` holds the stages (search shards, curation, training, evaluation,
registration), ``rstar.evolve.models`` how a round finds the models of the previous one,
``rstar.evolve.report`` the round metrics and the per-round table. Prefect wiring lives
outside the library, in ``tasks/`` and ``flows/``.
"""
