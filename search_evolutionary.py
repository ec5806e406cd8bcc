"""PertNAS population search (torchrun): each rank grows its members' cells by perturb-val.

    torchrun --nnodes=1 --nproc_per_node=4 search_evolutionary.py --seed 1 --save ./ --note evolutionary \
        --npop 4 --distributed --cluster local --train_path <cifar_ffcv dir>

Without ffcv (or without --train_path) the toolkit's in-memory loader reads --dataset/--data_path.
Rerunning the same command resumes: finished members are kept, unfinished ones continue from their
last decision. Logic lives in nas/pertnas.py; this file only wires flags, data, ranks and results.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Sequence

from nas.cli import UsageError, get_logger, run_cli
from nas.data import add_data_args

# Fields of the run that must match when a run folder is resumed.
_RESUME_KEYS = ("seed", "npop", "init_channels", "layers", "batch_size", "learning_rate", "learning_rate_min",
                "momentum", "weight_decay", "epochs_per_step", "finetune_steps", "finetune_extra", "op_cap",
                "dataset", "data_path", "train_path", "limit_train", "limit_valid", "max_train_steps",
                "cutout_length", "fast", "image_size")


def build_parser() -> argparse.ArgumentParser:
    """Flags of PertNAS search_evolutionary.py plus the toolkit's data, resume and scoring flags."""
    p = argparse.ArgumentParser(description="PertNAS: discrete perturbation population search (torchrun)")
    p.add_argument("--seed", type=int, default=2, help="seed of member 0; member k uses seed+k (default 2)")
    p.add_argument("--save", default="./", help="parent folder; the run goes to SAVE/search-NOTE (default ./)")
    p.add_argument("--note", default="try", help="run name (default %(default)s)")
    p.add_argument("--npop", type=int, default=4, help="population size, spread over the ranks (default 4)")
    p.add_argument("--distributed", action="store_true",
                   help="join the torchrun job (works with one process too; without torchrun: one process)")
    p.add_argument("--cluster", default="local", choices=("local", "slurm", "tacc"),
                   help="local: torchrun env vars; slurm/tacc: SLURM_PROCID/SLURM_LOCALID/SLURM_NTASKS")
    p.add_argument("--train_path", default=None,
                   help="folder with cifar_train.beton and cifar_test.beton (FFCV); needs ffcv installed")
    p.add_argument("--workers", type=int, default=8, help="FFCV loader worker threads (default 8)")
    p.add_argument("--cifar100", action="store_true", help="same as --dataset cifar100 (PertNAS flag)")
    p.add_argument("--image_size", type=int, default=None,
                   help="resize images once (toolkit loader only; FFCV files keep the size they were written at)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads per rank (torchrun sets 1 per process; fewer threads help on busy CPUs)")
    add_data_args(p)
    g = p.add_argument_group("search budget (PertNAS defaults)")
    g.add_argument("--batch_size", type=int, default=256)
    g.add_argument("--learning_rate", "--lr", type=float, default=0.2176)
    g.add_argument("--learning_rate_min", type=float, default=0.001)
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--weight_decay", type=float, default=3e-4)
    g.add_argument("--init_channels", type=int, default=16)
    g.add_argument("--layers", type=int, default=5, help="cells in the search network (default 5)")
    g.add_argument("--nodes", type=int, default=4, help="intermediate nodes per cell (only 4 is supported)")
    g.add_argument("--op_cap", type=int, default=1, help="random ops per edge at the start (default 1)")
    g.add_argument("--epochs_per_step", type=int, default=5,
                   help="training epochs before each decision (PertNAS: 5)")
    g.add_argument("--finetune_steps", type=int, default=50, help="fine-tune steps before measuring perturb acc")
    g.add_argument("--finetune_extra", default="20,80,130",
                   help="extra fine-tune steps in the expand, op-selection and topology phases (default 20,80,130)")
    g.add_argument("--max_train_steps", type=int, default=None, help="cap on steps per training epoch")
    g.add_argument("--cutout_length", type=int, default=8, help="cutout in training (PertNAS FFCV: 8; 0 = off)")
    g.add_argument("--fast", action="store_true", help="one batch per epoch and no fine-tune (debugging)")
    g.add_argument("--no_amp", action="store_true", help="float32 on CUDA too (AMP is on by default on CUDA)")
    o = p.add_argument_group("run")
    o.add_argument("--overwrite", action="store_true", help="restart a run folder that holds different settings")
    o.add_argument("--stop_after", type=int, default=None,
                   help="stop each member after N decisions (resume later by rerunning)")
    o.add_argument("--wandb", "--use_wandb", dest="wandb", action="store_true",
                   help="log to Weights & Biases with your own login (WANDB_API_KEY or `wandb login`)")
    o.add_argument("--wandb_project", default="pertnas")
    o.add_argument("--nb301_models", default=os.environ.get("NB301_MODELS"),
                   help="NAS-Bench-301 model folder (nb_models_1.0) to score the best cell (env NB301_MODELS)")
    return p


def _slurm_env() -> None:
    # PertNAS' 'tacc' cluster mode: ranks from SLURM; torch.distributed reads RANK/WORLD_SIZE/MASTER_*.
    for dst, src in (("RANK", "SLURM_PROCID"), ("LOCAL_RANK", "SLURM_LOCALID"), ("WORLD_SIZE", "SLURM_NTASKS")):
        if src not in os.environ:
            raise UsageError(f"--cluster slurm: {src} is not set (run under srun, or use --cluster local)")
        os.environ.setdefault(dst, os.environ[src])
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "33182")


def _config(args: argparse.Namespace):
    from nas.pertnas import PertNASConfig

    try:
        extra = tuple(int(v) for v in args.finetune_extra.split(","))
    except ValueError:
        raise UsageError(f"--finetune_extra must be three integers like 20,80,130, got {args.finetune_extra!r}") \
            from None
    if len(extra) != 3:
        raise UsageError(f"--finetune_extra must be three integers like 20,80,130, got {args.finetune_extra!r}")
    if args.nodes != 4:
        raise UsageError(f"--nodes {args.nodes}: only 4 intermediate nodes are supported (the DARTS cell)")
    fast = args.fast
    try:
        return PertNASConfig(init_channels=args.init_channels, layers=args.layers, batch_size=args.batch_size,
                             lr=args.learning_rate, lr_min=args.learning_rate_min, momentum=args.momentum,
                             weight_decay=args.weight_decay, epochs_per_step=args.epochs_per_step,
                             finetune_steps=0 if fast else args.finetune_steps,
                             finetune_extra=(0, 0, 0) if fast else extra, op_cap=args.op_cap, amp=not args.no_amp,
                             max_train_steps=1 if fast else args.max_train_steps)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _load_data(args, device, log):
    """FFCV when --train_path is given and ffcv imports; else the toolkit's in-memory TensorLoader."""
    from nas.ffcv_data import INSTALL_HINT, ffcv_available, ffcv_loaders
    from nas.pertnas import SearchData

    val_bs = args.batch_size  # PertNAS: val_batch_size = batch_size
    if args.train_path and ffcv_available():
        tr, va, meta = ffcv_loaders(args.train_path, batch_size=args.batch_size, val_batch_size=val_bs,
                                    device=device, num_workers=args.workers, seed=args.seed,
                                    limit_train=args.limit_train,
                                    limit_valid=args.batch_size if args.fast else args.limit_valid,
                                    cutout=args.cutout_length)
        data = SearchData(tr, va, int(meta["n_classes"]), 3, source="ffcv", extras=meta)
    else:
        if args.train_path:
            log.warning("--train_path given but %s; reading --dataset %s from %s instead", INSTALL_HINT.split(":")[0],
                        args.dataset, args.data_path)
        from nas.data import TensorLoader, load_dataset

        valid = "test" if args.train_portion is None else args.train_portion
        d = load_dataset(args.dataset, args.data_path, valid=valid, limit_train=args.limit_train,
                         image_size=args.image_size,
                         limit_valid=args.batch_size if args.fast else args.limit_valid)
        tr = TensorLoader(d.train_x, d.train_y, batch_size=args.batch_size, shuffle=True, augment=True,
                          cutout=args.cutout_length, mean=d.mean, std=d.std, device=device, drop_last=True,
                          seed=args.seed, channels_last=device.type == "cuda")
        va = TensorLoader(d.valid_x, d.valid_y, batch_size=val_bs, mean=d.mean, std=d.std, device=device,
                          channels_last=device.type == "cuda")
        data = SearchData(tr, va, d.n_classes, d.in_channels, source="tensor",
                          extras={"dataset": d.name, "n_train": len(d.train_y), "n_valid": len(d.valid_y)})
    if len(data.train) == 0:
        raise UsageError(f"no full training batch: {args.limit_train} training images < --batch_size "
                         f"{args.batch_size}; lower --batch_size")
    return data


def _check_run_dir(run_dir: Path, args, is_main: bool) -> None:
    """A rerun with the same settings resumes; different settings need --overwrite or another --note."""
    from nas.io import atomic_write_json, read_json

    cfg_path = run_dir / "config.json"
    now = {k: getattr(args, k) for k in _RESUME_KEYS}
    if cfg_path.exists():
        old = read_json(cfg_path)
        diff = {k: (old.get(k), v) for k, v in now.items() if old.get(k) != v}
        if diff and not args.overwrite:
            k, (a, b) = next(iter(diff.items()))
            raise UsageError(f"{run_dir} holds a run with other settings ({k}: {a!r} there, {b!r} now); "
                             f"use another --note/--save, or --overwrite to start it over")
        if diff and is_main:
            import shutil

            for m in run_dir.glob("member*"):
                shutil.rmtree(m)
    if is_main:
        atomic_write_json(cfg_path, now)


def main(argv: Sequence[str] | None = None) -> int:
    """Run (or resume) this rank's population members, then report the best cell on rank 0."""
    args = build_parser().parse_args(argv)
    if args.cifar100:
        args.dataset = "cifar100"
    if args.npop < 1:
        raise UsageError(f"--npop must be positive, got {args.npop}")
    cfg = _config(args)
    started = time.time()

    import torch

    from nas.device import resolve_device
    from nas.distributed import barrier, cleanup, init_distributed

    if args.distributed and args.cluster in ("slurm", "tacc"):
        _slurm_env()
    if not args.distributed and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError("launched by torchrun with several processes: add --distributed")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be positive, got {args.threads}")
        torch.set_num_threads(args.threads)
    resolve_device(args.device)  # clear error for an unavailable --device before joining the job
    ctx = init_distributed(args.device)
    device = torch.device(ctx.device)
    run_dir = Path(args.save) / f"search-{args.note}"
    try:
        if ctx.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            _check_run_dir(run_dir, args, True)
        barrier(ctx)
        if not ctx.is_main:
            _check_run_dir(run_dir, args, False)
        log = get_logger("nas", run_dir / f"log_p{ctx.rank}.txt")
        log.info("rank %d/%d on %s (%s); args %s", ctx.rank, ctx.world_size, device, ctx.backend or "single process",
                 vars(args))
        torch.backends.cudnn.benchmark = True
        data = _load_data(args, device, log)
        log.info("data: %s, %d classes, %d train batches, %d valid batches", data.source, data.n_classes,
                 len(data.train), len(data.valid))
        mine = [k for k in range(args.npop) if k % ctx.world_size == ctx.rank]
        for k in mine:
            mdir = run_dir / f"member{k}"
            if (mdir / "result.json").exists():
                log.info("member %d: finished earlier, kept (%s)", k, mdir / "result.json")
                continue
            _run_member(k, args, cfg, data, device, mdir, log, started)
        if not ctx.is_main:
            return 0
        return _report(args, run_dir, log, started)
    finally:
        cleanup(ctx)


def _run_member(k, args, cfg, data, device, mdir, log, started) -> None:
    from torch.utils.tensorboard import SummaryWriter

    from nas.io import atomic_write_json, run_metadata
    from nas.pertnas import member_result, search_member

    mdir.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(str(mdir / "tb"))
    on_step = None
    if args.wandb:
        try:
            import wandb  # optional; the user's own login, never a key in this code
        except ImportError:
            raise UsageError("--wandb needs the wandb package (pip install wandb) and your own login") from None
        run = wandb.init(project=args.wandb_project, name=f"{args.note}_m{k}", dir=str(mdir),
                         config={**vars(args), "member": k}, group=args.note, resume="allow")

        def on_step(state, run=run):
            run.log({f"m{k}/{key}": v for key, v in state["history"][-1].items() if isinstance(v, (int, float))},
                    step=state["step"])
    try:
        state = search_member(k, args.seed + k, cfg, data, device, mdir, writer=writer, stop_after=args.stop_after,
                              on_step=on_step)
    finally:
        writer.close()
        if args.wandb:
            run.finish()
    if state is None:
        log.info("member %d: stopped after %d decisions (--stop_after); rerun to continue", k, args.stop_after)
        return
    rec = member_result(state, cfg)
    rec.update(data=data.source, data_info=data.extras, **run_metadata(args, seed=args.seed + k, started=started))
    atomic_write_json(mdir / "result.json", rec)
    (mdir / "genotype.txt").write_text(state["genotype"] + "\n")
    log.info("member %d done: valid acc %.2f%%, genotype %s", k, state["valid_acc"], state["genotype"])


def _report(args, run_dir, log, started) -> int:
    """Rank 0: wait for every member's result (other ranks write theirs), print and save the best."""
    from genotypes import parse_genotype
    from nas.io import atomic_write_json, read_json, run_metadata
    from nas.pertnas import nb301_score

    paths = [run_dir / f"member{k}" / "result.json" for k in range(args.npop)]
    if args.stop_after is not None and not all(p.exists() for p in paths):
        log.info("stopped early (--stop_after); rerun the same command to continue")
        return 0
    waited = 0.0
    while not all(p.exists() for p in paths):  # no collective: members may take hours, past any barrier timeout
        time.sleep(2.0)
        waited += 2.0
        if waited % 600 < 2.0:
            log.info("waiting for %s", [str(p) for p in paths if not p.exists()])
    results = [read_json(p) for p in paths]
    best = max(results, key=lambda r: r["valid_acc"])
    g = parse_genotype(best["genotype"])
    nb, why = nb301_score(g, args.nb301_models)
    summary = {"best_member": best["member"], "best_valid_acc": best["valid_acc"], "best_genotype": best["genotype"],
               "members": [{"member": r["member"], "seed": r["seed"], "valid_acc": r["valid_acc"],
                            "genotype": r["genotype"]} for r in results],
               "nb301_predicted_acc": nb, "nb301_note": why, **run_metadata(args, seed=args.seed, started=started)}
    atomic_write_json(run_dir / "results.json", summary)
    (run_dir / "best_genotype.txt").write_text(best["genotype"] + "\n")
    for r in results:
        log.info("member %d (seed %d): valid acc %.2f%%", r["member"], r["seed"], r["valid_acc"])
    if nb is not None:
        log.info("NAS-Bench-301 predicted accuracy of the best cell (normal = reduce): %.2f%% (%s)", nb, why)
    else:
        log.info("NAS-Bench-301 scoring skipped: %s. Train the cell instead: python augment.py --arch \"%s\" "
                 "--param BPE1", why, best["genotype"])
    print(f"best genotype (member {best['member']}, valid acc {best['valid_acc']:.2f}%):")
    print(best["genotype"])
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
