"""Training the policy (SFT) and the process preference model (pairwise) with TRL.

- ``rstar.train.sft.train_policy``: SFT on a round's SFT rows, completion-only loss.
- ``rstar.train.ppm.train_ppm``: a scalar head on the new policy, Bradley-Terry loss on
  the preference pairs, held-out pair accuracy.
- ``rstar.train.config``: ``PolicyTrainConfig``, ``PPMTrainConfig``, ``TrainConfig``.
- ``rstar.train.run``: what both share: the run skeleton (``train_model``), resumable
  runs, atomic checkpoints.

Importing this package is cheap (configs only); the trainers load torch and TRL.
"""

from rstar.train.config import BaseTrainConfig, PolicyTrainConfig, PPMTrainConfig, TrainConfig

__all__ = ["BaseTrainConfig", "PPMTrainConfig", "PolicyTrainConfig", "TrainConfig"]
