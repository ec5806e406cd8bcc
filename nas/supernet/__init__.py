"""Weight-sharing supernets: search (DARTS, blank; DARTS-PT's and BPE's protocols) and DARTS-PT's projection.

- architect.py: how the alphas are updated (first order, DARTS' second order, none).
- search.py: ``SearchConfig``, ``run_search`` (resumable, one run folder), ``load_search``.
- projection.py: ``ProjectionConfig``, ``run_projection`` (perturbation-based selection).
"""
