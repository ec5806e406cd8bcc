"""The resumable, torchrun-aware search loop shared by every strategy.

``run_search`` proposes a batch of candidates, scores them (under torchrun: through a work queue, a rank
taking the next candidate the moment it is free), tells the strategy, and checkpoints after every
completed evaluation, so a rerun after a kill never repeats finished work. Rank 0 publishes each batch
on the job's store and collects the scores from it (nas.workqueue): no collective waits while a rank
trains a candidate for hours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas.checkpoint import get_rng_state, save_checkpoint, set_rng_state
from nas.distributed import DistContext
from nas.errors import NASError
from nas.estimators.base import call_score
from nas.progress import bar
from nas.strategies.base import Strategy
from nas.workqueue import Board, WorkQueue, as_sent


class EvalFailed(NASError):
    """An estimator failed on some rank; re-raised everywhere so no rank hangs."""


def run_search(strategy: Strategy, encoding: Any, estimator: Any, *, n_iters: int, batch: int = 1,
               ckpt_path: str | Path | None = None, resume_state: dict | None = None, ctx: DistContext | None = None,
               logger: Any = None, writer: Any = None, config_key: dict | None = None,
               poll_s: float = 0.2) -> list[dict]:
    """Propose, score (spread over ranks), tell, checkpoint; returns the history (rank 0; [] elsewhere)."""
    ctx = ctx or DistContext()
    board = Board(ctx, prefix="nassearch")
    history: list[dict] = []
    pending: dict | None = None
    if ctx.is_main and resume_state is not None:
        history = list(resume_state["history"])
        pending = resume_state.get("pending")
        strategy.load_state_dict(resume_state["strategy"])
        set_rng_state(resume_state["rng"])
        if logger:
            logger.info("resumed from %s: %d evaluations done%s", ckpt_path, len(history),
                        f", {len(pending['results'])}/{len(pending['vecs'])} of a batch" if pending else "")

    def save() -> None:
        if ctx.is_main and ckpt_path is not None:
            save_checkpoint(ckpt_path, {"history": history, "pending": pending, "strategy": strategy.state_dict(),
                                        "rng": get_rng_state(), "config_key": config_key or {}})

    errors: list[str] = []

    def collect(results: list[dict]) -> None:  # rank 0: a result as it arrives, checkpointed at once
        for r in results:
            if "error" in r:
                errors.append(r["error"])
                continue
            pending["results"][int(r["j"])] = {k: r[k] for k in ("value", "cost_seconds", "extras")}
            save()  # checkpoint after every completed evaluation, whichever rank made it

    pbar = bar(total=n_iters, initial=len(history), desc="evaluations", unit="arch") if ctx.is_main else None
    for rnd in range(1 << 62):
        if ctx.is_main:
            if pending is None and len(history) < n_iters:
                vecs = strategy.propose(min(batch, n_iters - len(history)), len(history))
                pending = {"vecs": vecs, "results": {}}
                save()  # strategy state after proposing: a resume re-uses these candidates
            msg = None if pending is None else {"vecs": [[int(x) for x in v] for v in pending["vecs"]],
                                                "done": sorted(pending["results"]), "base": len(history)}
            board.publish(f"round/{rnd}", msg)
        else:
            msg = board.wait(f"round/{rnd}", poll_s=poll_s)
        if msg is None:
            break
        if "error" in msg:
            raise EvalFailed(f"evaluation failed: {msg['error']}")
        vecs, done, base = msg["vecs"], set(msg["done"]), msg["base"]
        todo = [j for j in range(len(vecs)) if j not in done]
        queue = WorkQueue("search", len(todo), ctx)
        while (t := queue.take()) is not None:
            j = todo[t]
            try:
                s = call_score(estimator, encoding.decode(vecs[j]), tag=f"eval_{base + j:04d}")
                res = {"j": j, "value": float(s.value), "cost_seconds": float(s.cost_seconds), "extras": s.extras}
            except Exception as exc:  # noqa: BLE001 - forwarded so that every rank stops together
                if not ctx.enabled:
                    raise
                res = {"j": j, "error": f"{type(exc).__name__}: {exc}"}
            if ctx.is_main:
                # its own result as another rank's arrives (same types everywhere), and theirs posted meanwhile
                collect([as_sent(res), *queue.receive()])
            else:
                queue.post(res)
        queue.finish()
        if not ctx.is_main:
            continue
        queue.drain(collect, poll_s=poll_s)  # the other ranks' results, until every rank has finished
        if errors:
            board.publish(f"round/{rnd + 1}", {"error": errors[0]})  # the other ranks stop at the next round
            raise EvalFailed(f"evaluation failed: {errors[0]}")
        vecs = pending["vecs"]  # as the strategy proposed them
        results = [pending["results"][j] for j in range(len(vecs))]
        logs = strategy.tell(vecs, [r["value"] for r in results])
        new = []
        for v, r, lg in zip(vecs, results, logs):
            rec = {"index": len(history), "sample": [int(x) for x in v], "arch": encoding.format(encoding.decode(v)),
                   "value": r["value"], "cost_seconds": r["cost_seconds"], "extras": r["extras"], **lg}
            history.append(rec)
            new.append(rec)
        pending = None
        save()  # the history first, then the lines that report it: a kill never logs what a rerun tells again
        for rec in new:
            best = max(h["value"] for h in history[: rec["index"] + 1])
            if logger:
                logger.info("eval %d/%d value %.4f best %.4f cost %.2fs arch %s", rec["index"] + 1, n_iters,
                            rec["value"], best, rec["cost_seconds"], rec["arch"])
                if "baseline" in rec:  # BPE run_rl.py's line, read by parse_json.py
                    logger.info("step = %d, baseline reward = %.5f", rec["index"], rec["baseline"])
            if pbar is not None:
                pbar.set_postfix(best=f"{best:.4g}", refresh=False)
                pbar.update()
            if writer is not None:  # evaluations counted from 1, as the log lines and the plots count them
                writer.add_scalar("search/value", rec["value"], rec["index"] + 1)
                writer.add_scalar("search/best_so_far", best, rec["index"] + 1)
                if "baseline" in rec:
                    writer.add_scalar("search/baseline_reward", rec["baseline"], rec["index"] + 1)
    if pbar is not None:
        pbar.close()
    return history
