"""Performance estimators behind one interface: ``score(arch) -> Score(value, cost_seconds, extras)``.

- ``BudgetedTrainingEstimator`` (budgeted.py): train from scratch under a ``Budget`` (BPE1, BPE2, ...).
- ``TableEstimator``, ``NB201ApiEstimator``, ``NB301Estimator`` (benchmarks.py): look the score up.
- ``ZeroShotEstimator`` (zeroshot.py): one zero-cost proxy of the untrained network.
- ``OneShotEstimator`` (search.py supernets), ``SinglePathEstimator`` (train_oneshot.py, aw_nas' derive) and
  ``oneshot_for_run`` (oneshot.py, imported from there): accuracy inside a trained supernet.
- ``build_estimator`` / ``add_estimator_args`` (factory.py): the estimator a command line asks for.
"""

from nas.estimators.base import Estimator, Score, call_score
from nas.estimators.benchmarks import NB201ApiEstimator, NB301Estimator, TableEstimator
from nas.estimators.budgeted import BudgetedTrainingEstimator
from nas.estimators.zeroshot import ZeroShotEstimator

__all__ = ["BudgetedTrainingEstimator", "Estimator", "NB201ApiEstimator", "NB301Estimator", "Score",
           "TableEstimator", "ZeroShotEstimator", "call_score"]
