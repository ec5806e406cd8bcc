"""PertNAS (Ahmad et al., "Discrete Architectural Perturbations for NAS", afzalxo/PertNAS).

``search``: selection rules, perturb-val and one decision; ``population``: members on ranks, their
shared valuation and the one selection; ``run``: a whole run from the flags of search_evolutionary.py.
"""

from nas.pertnas.search import (
    CANDIDATE_OPS,
    FINE_ORDER,
    OP_LISTS,
    PERTNAS_OPS,
    PertNASConfig,
    SearchData,
    coarse_select,
    fine_select,
    init_switches,
    node_select,
    perturb_val,
    run_step,
    to_genotype,
    train_steps,
)

__all__ = ["CANDIDATE_OPS", "FINE_ORDER", "OP_LISTS", "PERTNAS_OPS", "PertNASConfig", "SearchData", "coarse_select",
           "fine_select", "init_switches", "node_select", "perturb_val", "run_step", "to_genotype", "train_steps"]
