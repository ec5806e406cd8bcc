"""The PertNAS population on torchrun ranks: members, their shared valuation, the one selection.

SE 149: rank ``r`` runs members ``r, r + W, r + 2W, ...`` (``npop // W`` iterations, W = world size). Each
member expands the 14 edges and fills its 14 x ops valuation matrix; the matrices are all-reduced
(SUM / W per iteration, then a running mean over iterations, SE 217-231: the plain mean over all npop
members), and the coarse, fine and topology selections run once, on rank 0, from that mean (SE 237-330).
With one process the same code averages its npop members, so the mean does not depend on W.

Every member and the selection keep a JSON state (``state.json``) written after each decision, so a
killed run resumes at its last decision. Ranks wait for each other's members by polling files, not at a
collective: members may take hours, past any collective timeout. A rank that stops (``--stop_after``) or
fails leaves ``status_p<rank>.json`` tagged with the run's token, so waiting ranks stop too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.tensorboard import SummaryWriter

from nas.distributed import DistContext
from nas.errors import NASError
from nas.io import atomic_write_json, read_json
from nas.pertnas.search import PertNASConfig, SearchData, n_steps, new_member_state, new_selection_state, run_step
from nas.progress import bar
from nas.seeds import child_seed

log = logging.getLogger(__name__)
TERMINAL = ("expanded", "done")
POLL_SECONDS = 1.0


def members_of(rank: int, world_size: int, npop: int) -> list[int]:
    """The members rank ``rank`` runs, in iteration order (SE 149)."""
    return list(range(rank, npop, world_size))


def member_seed(seed: int, member: int) -> int:
    """Seed of a member's initial ops (SE's unseeded ``random``, seeded here per member)."""
    return child_seed(seed, "member", member)


def run_state(state: dict, state_path: Path, cfg: PertNASConfig, data: SearchData, device: torch.device, *,
              name: str, tb_dir: Path | None = None, stop_after: int | None = None,
              on_step: Callable[[dict], None] | None = None) -> dict | None:
    """Run ``state`` decision by decision to its end, writing it after each; None when ``stop_after`` hit."""
    writer = SummaryWriter(str(tb_dir)) if tb_dir is not None else None
    progress = bar(total=n_steps(state), desc=name, unit="decision", initial=state["step"])
    done_now = 0
    try:
        while state["phase"] not in TERMINAL:
            if stop_after is not None and done_now >= stop_after:
                return None
            t0 = time.time()
            state = run_step(state, cfg, data, device)
            atomic_write_json(state_path, state)
            done_now += 1
            rec, last = state["history"][-1], state["scores"][-1] if state["scores"] else None
            if writer is not None:
                for key in ("train_loss", "train_acc", "valid_acc"):
                    writer.add_scalar(f"step/{key}", rec[key], rec["step"])
            log.info("%s step %d/%d %s: valid acc %.2f%% (%.1fs)%s", name, state["step"], n_steps(state),
                     rec["decision"], rec["valid_acc"], time.time() - t0,
                     f" diffs {np.round(last['diffs'], 2).tolist()}" if last and rec["decision"] != "final" else "")
            if progress is not None:
                progress.update(1)
            if on_step is not None:
                on_step(state)
        return state
    finally:
        if progress is not None:
            progress.close()
        if writer is not None:
            writer.close()


def load_state(state_path: Path, cfg: PertNASConfig, new: Callable[[], dict], name: str) -> dict:
    """The saved state (resume) or a new one, written at once."""
    if state_path.exists():
        state = read_json(state_path)
        if not isinstance(state, dict) or state.get("ops") != list(cfg.ops) or "phase" not in state:
            raise NASError(f"{state_path}: not a state of this run (ops {list(cfg.ops)}); pass --overwrite")
        log.info("%s: resuming at step %d (%s)", name, state["step"], state["phase"])
        return state
    state = new()
    state_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(state_path, state)
    return state


def run_member(member: int, seed: int, cfg: PertNASConfig, data: SearchData, device: torch.device,
               member_dir: Path, *, shared: bool, stop_after: int | None = None,
               on_step: Callable[[dict], None] | None = None) -> dict | None:
    """Run (or resume) one member: its expansion (shared) or every phase (independent)."""
    ms = member_seed(seed, member)
    # SE seeds torch alike on every rank (SE 136): shared members train with the run's seed and differ by their
    # initial ops only; independent members also train with their own seed.
    state = load_state(member_dir / "state.json", cfg,
                       lambda: new_member_state(member, ms, cfg, shared=shared, train_seed=seed if shared else ms),
                       f"member {member}")
    return run_state(state, member_dir / "state.json", cfg, data, device, name=f"member {member}",
                     tb_dir=member_dir / "tb", stop_after=stop_after, on_step=on_step)


def member_record(state: dict, cfg: PertNASConfig) -> dict[str, Any]:
    """What a member leaves in its folder: initial ops, valuation matrix, every perturbation score."""
    rec = {"member": state["member"], "seed": state["seed"], "initial_switches": state["initial_switches"],
           "expand_order": state["expand_order"], "ops": list(cfg.ops), "valuation_matrix": state["valuation"],
           "perturbation_scores": state["scores"], "history": state["history"]}
    if state["mode"] == "independent":
        rec.update(genotype=state["genotype"], valid_acc=state["valid_acc"], node_order=state["node_order"],
                   final_switches=state["switches"])
    return rec


def share_valuation(matrices: Sequence[np.ndarray], ctx: DistContext) -> np.ndarray:
    """SE 217-231: per iteration all_reduce(SUM) / world size, then the running mean over iterations.

    ``matrices`` are this rank's members in iteration order; every rank passes as many. Single-process
    (``ctx.enabled`` False) this is the mean of the given matrices.
    """
    device = torch.device(ctx.device)  # NCCL reduces CUDA tensors, gloo CPU ones
    running = []
    for m in matrices:
        t = torch.tensor(np.asarray(m, dtype=np.float64), device=device)
        if ctx.enabled:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)  # SE 222
            t = t / ctx.world_size  # SE 223
        running.append(t)
    total = torch.zeros_like(running[0])
    for t in running:  # SE 225-228
        total += t
    return (total / len(running)).cpu().numpy()


def write_status(run_dir: Path, rank: int, token: str, state: str, message: str = "") -> None:
    """Tell ranks that wait for this one's members that it stopped or failed."""
    atomic_write_json(run_dir / f"status_p{rank}.json", {"token": token, "state": state, "message": message})


def wait_for_files(paths: Sequence[Path], run_dir: Path, token: str, world_size: int) -> bool:
    """True once every path exists; False if a rank stopped early; NASError if a rank failed (this run)."""
    waited = 0.0
    while not all(p.exists() for p in paths):
        marks = {r: read_json(run_dir / f"status_p{r}.json") for r in range(world_size)
                 if (run_dir / f"status_p{r}.json").exists()}
        marks = {r: m for r, m in marks.items() if isinstance(m, dict) and m.get("token") == token}
        for r, m in marks.items():
            if m.get("state") == "failed":
                raise NASError(f"rank {r} failed: {m.get('message', '?')}")
        if marks:
            return False
        time.sleep(POLL_SECONDS)
        waited += POLL_SECONDS
        if waited % 600 < POLL_SECONDS:
            log.info("waiting for %s", ", ".join(str(p) for p in paths if not p.exists()))
    return True


def run_selection(valuation: np.ndarray, seed: int, cfg: PertNASConfig, data: SearchData, device: torch.device,
                  sel_dir: Path, *, members: int, stop_after: int | None = None,
                  on_step: Callable[[dict], None] | None = None) -> dict | None:
    """Run (or resume) the one selection from the mean valuation matrix (SE 237-330, rank 0)."""
    path = sel_dir / "state.json"

    def new() -> dict:
        state = new_selection_state(seed, valuation, cfg, members)
        log.info("coarse selection (top-2 ops per edge, SE 240) from the mean of %d members: %s", members,
                 state["switches"])
        return state

    state = load_state(path, cfg, new, "selection")
    if not np.allclose(np.asarray(state["valuation"]), valuation, rtol=0, atol=1e-9):
        log.warning("%s holds another valuation than the members' mean; continuing the saved selection", path)
    return run_state(state, path, cfg, data, device, name="selection", tb_dir=sel_dir / "tb", stop_after=stop_after,
                     on_step=on_step)
