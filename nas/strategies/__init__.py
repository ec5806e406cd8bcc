"""Search strategies over any space with any estimator, on one shared, resumable, torchrun-aware loop.

- ``RegularizedEvolution`` (evolution.py): Real et al. 2019, as BPE's run_evolution.py.
- ``Reinforce`` (reinforce.py): BPE's and NAS-Bench-201's REINFORCE, or an LSTM controller.
- ``RandomSearch`` (base.py): uniform samples.
- ``run_search`` (loop.py): propose, score (one per torchrun rank), tell, checkpoint every evaluation.
- encodings.py: how a strategy sees a space; bpe_parse.py: parse_json.py's BPE extraction;
  runner.py: the scripts' flags and run files (``search_main``, imported from there).

Ask/tell in ten lines (any object with ``name`` and ``score(arch)`` is an estimator)::

    from nas.strategies import RegularizedEvolution, make_encoding, run_search
    enc = make_encoding("nb201")
    history = run_search(RegularizedEvolution(enc, seed=0, pop_size=10, sample_size=3), enc, my_estimator, n_iters=100)
"""

from nas.strategies.base import RandomSearch, Strategy
from nas.strategies.bpe_parse import bpe_results, ea_sample_cells, load_run, rl_choose_by_prob
from nas.strategies.encodings import BPECellEncoding, SpaceEncoding, make_encoding
from nas.strategies.evolution import RegularizedEvolution
from nas.strategies.loop import EvalFailed, run_search
from nas.strategies.reinforce import FactorizedController, LSTMController, Reinforce

__all__ = ["BPECellEncoding", "EvalFailed", "FactorizedController", "LSTMController", "RandomSearch",
           "RegularizedEvolution", "Reinforce", "SpaceEncoding", "Strategy", "bpe_results", "ea_sample_cells",
           "load_run", "make_encoding", "rl_choose_by_prob", "run_search"]
