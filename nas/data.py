"""The one data module: datasets as uint8 tensors, resized once, and a loader that augments whole batches.

``load_dataset`` returns the decoded images as one ``uint8 [N, C, H, W]`` tensor per split, already
resized to the budget's image size (BPE resizes every image on every step; doing it once is the same
pixels). ``TensorLoader`` keeps that tensor on the training device and does random crop, flip and cutout
on whole batches there, with all of an epoch's random draws made at once so no step waits on the host.

Where the images come from (``--dataset``): ``cifar10``/``cifar100``/``svhn`` read torchvision's files in
``--data_path`` (``cifar-10-batches-py/``, ...) or, when those are absent and the folder holds
``train/<class>/`` image folders (e.g. CIFAR-10 unpacked to JPEGs), that folder layout under the dataset's
name; otherwise torchvision downloads them. ``folder`` is the folder layout under no name. ``auto`` (the
default of the scripts) is ``cifar10`` when ``cifar-10-batches-py/`` is there, ``folder`` when
``train/<class>/`` is, else ``cifar10`` (downloaded). Decoded folder images are cached in
``<data_path>/.nas_cache/`` under a fingerprint of the file list (names, sizes, mtimes).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.datasets as tvd
from PIL import Image

from nas.checkpoint import save_checkpoint
from nas.errors import NASError
from nas.progress import progress
from nas.seeds import child_seed

log = logging.getLogger(__name__)

DATASETS = ("cifar10", "cifar100", "svhn", "folder", "auto")
# torchvision's files of each named dataset (what --dataset auto and the folder fallback look for)
TORCHVISION_FILES = {"cifar10": ("cifar-10-batches-py",), "cifar100": ("cifar-100-python",),
                     "svhn": ("train_32x32.mat", "test_32x32.mat")}
# Per-channel statistics of the training sets (BPE preproc.py / DARTS utils.py).
STATS = {
    "cifar10": ((0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp"}


@dataclass
class ImageData:
    """Decoded train and validation images (uint8 NCHW) with labels and normalisation statistics."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    valid_x: torch.Tensor
    valid_y: torch.Tensor
    n_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])


# ----------------------------------------------------------------------------- reading


def _missing(name: str, root: Path, what: str) -> NASError:
    return NASError(f"{name} not found in {root}: {what} (or pass --dataset folder --data_path DIR with "
                    f"train/<class>/*.jpg and test/<class>/*.jpg)")


def _torchvision_split(name: str, root: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    try:
        if name == "cifar10":
            ds = tvd.CIFAR10(str(root), train=train, download=download)
            return np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)), np.asarray(ds.targets)
        if name == "cifar100":
            ds = tvd.CIFAR100(str(root), train=train, download=download)
            return np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)), np.asarray(ds.targets)
        ds = tvd.SVHN(str(root), split="train" if train else "test", download=download)
        return ds.data, np.asarray(ds.labels)
    except (RuntimeError, OSError) as exc:  # torchvision: 'Dataset not found or corrupted', URLError offline
        files = {"cifar10": "cifar-10-batches-py/", "cifar100": "cifar-100-python/",
                 "svhn": "train_32x32.mat and test_32x32.mat"}[name]
        raise _missing(name, root, f"put {files} there, or run once online to download "
                       f"({type(exc).__name__}: {str(exc).splitlines()[0][:80]})") from None


def _decode(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def has_torchvision_files(name: str, root: str | Path) -> bool:
    """``root`` holds torchvision's files of ``name`` (e.g. ``cifar-10-batches-py/``)."""
    return name in TORCHVISION_FILES and all((Path(root) / f).exists() for f in TORCHVISION_FILES[name])


def has_folder_layout(root: str | Path) -> bool:
    """``root/train/`` holds at least one class folder."""
    base = Path(root) / "train"
    return base.is_dir() and any(d.is_dir() and not d.name.startswith(".") for d in base.iterdir())


def resolve_dataset(name: str, data_path: str | Path) -> str:
    """``auto`` -> ``cifar10`` when cifar-10-batches-py/ is in ``data_path``, ``folder`` when train/<class>/ is,
    else ``cifar10`` (torchvision downloads it); any other name is returned as it is (lower case)."""
    name = name.lower()
    if name != "auto":
        return name
    if has_torchvision_files("cifar10", data_path):
        return "cifar10"
    return "folder" if has_folder_layout(data_path) else "cifar10"


class FolderSplit:
    """``root/<split>/<class>/*.jpg`` listed (not decoded) in a fixed interleaved order.

    The order is a fixed permutation of the sorted file list, so that the first N images (``--limit_train``)
    span every class; ``load(positions)`` decodes only those images, or reads the cache of the whole split.
    """

    def __init__(self, root: Path, split: str):
        self.root, self.split, base = root, split, root / split
        self._blob: dict | None = None  # the cache, once read
        if not base.is_dir():
            raise _missing("folder dataset", root, f"no {split}/ folder; expected {split}/<class>/*.jpg")
        self.classes = sorted(d.name for d in base.iterdir() if d.is_dir())
        files, labels, h = [], [], hashlib.sha1()
        for k, c in enumerate(self.classes):
            for e in sorted((e for e in os.scandir(base / c) if Path(e.name).suffix.lower() in IMAGE_EXTS),
                            key=lambda e: e.name):
                st = e.stat()
                # a cheap fingerprint of the file list: adding, removing or rewriting any image changes it
                h.update(f"{c}/{e.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
                files.append(Path(e.path))
                labels.append(k)
        if not files:
            raise _missing("folder dataset", root, f"{split}/<class>/ folders hold no images")
        order = np.random.default_rng(0).permutation(len(files))  # today's interleaving (do not change)
        self.files = [files[i] for i in order]
        self.labels = np.asarray(labels)[order]
        self.fingerprint = h.hexdigest()[:16]
        self.cache = root / ".nas_cache" / f"{split}-{self.fingerprint}.pt"

    def __len__(self) -> int:
        return len(self.files)

    def load(self, positions: range | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (uint8 NCHW) and labels at ``positions`` of the interleaved order (None: all of them)."""
        want = range(len(self)) if positions is None else positions
        whole = want.start == 0 and want.stop >= len(self)
        blob = self._read_cache()
        if blob is not None:
            x, y = blob["x"][want.start:want.stop], blob["y"][want.start:want.stop]
            return (x, y) if whole else (x.clone(), y.clone())  # a slice must not pin the whole split
        x = self._decode([self.files[i] for i in want])
        y = torch.from_numpy(self.labels[want.start:want.stop]).long()
        if whole:
            self._write_cache(x, y)
        return x, y

    def _decode(self, files: list[Path]) -> torch.Tensor:
        # PIL releases the GIL while decoding, so threads use every core
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            images = list(progress(pool.map(_decode, files, chunksize=64), total=len(files),
                                   desc=f"decode {self.split}", unit="img"))
        shapes = {im.shape for im in images[:1000]}
        if len(shapes) != 1:
            raise NASError(f"{self.root / self.split}: images differ in size ({sorted(shapes)[:3]}); resize them "
                           "to one size first")
        return torch.from_numpy(np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2)))

    def _read_cache(self) -> dict | None:
        """The decoded split from the cache, read once per listing (train and valid slice the same blob)."""
        if self._blob is None:
            self._blob = self._load_cache()
        return self._blob

    def _load_cache(self) -> dict | None:
        try:
            if self.cache.is_file():
                blob = torch.load(self.cache, weights_only=True)  # tensors only: never unpickles code
                if len(blob["y"]) == len(self):
                    log.info("reading %d decoded images of %s from %s", len(self), self.root / self.split,
                             self.cache)
                    return blob
        except Exception as exc:  # a broken cache is rebuilt, never trusted
            log.warning("ignoring unreadable cache %s (%s)", self.cache, exc)
        return None

    def _write_cache(self, x: torch.Tensor, y: torch.Tensor) -> None:
        try:
            save_checkpoint(self.cache, {"x": x, "y": y, "n_classes": len(self.classes)})  # atomic
        except OSError as exc:
            log.info("not caching the decoded images (%s): they are decoded again next time", exc)
            return
        for old in self.cache.parent.glob(f"{self.split}*.pt"):  # caches of earlier file lists
            if old != self.cache and (old.name == f"{self.split}.pt" or old.name.startswith(f"{self.split}-")):
                old.unlink(missing_ok=True)
        log.info("cached %d decoded images of %s in %s (%.1f MB)", len(y), self.root / self.split, self.cache,
                 self.cache.stat().st_size / 2**20)


def _take(n: int, limit: int | None, start: int = 0) -> range:
    return range(start, start + (min(n, limit) if limit else n))


def resize_uint8(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a uint8 NCHW tensor once (bilinear with antialiasing, as PIL's Resize), in chunks."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = torch.empty((x.shape[0], x.shape[1], size, size), dtype=torch.uint8)
    for i in range(0, x.shape[0], 4096):
        chunk = F.interpolate(x[i:i + 4096].float(), size=(size, size), mode="bilinear", antialias=True,
                              align_corners=False)
        out[i:i + 4096] = chunk.round_().clamp_(0, 255).to(torch.uint8)
    return out


def load_dataset(name: str, data_path: str | Path, *, image_size: int | None = None,
                 valid: str | float = "test", limit_train: int | None = None, limit_valid: int | None = None,
                 download: bool = True) -> ImageData:
    """Train and validation images of a dataset as uint8 tensors resized to ``image_size``.

    ``valid='test'`` validates on the test split (what BPE does); a float ``p`` keeps the first ``p`` of
    train for training and validates on the rest (DARTS' ``--train_portion``); ``'none'`` loads train
    only (zero-shot proxies need no validation images). ``limit_*`` keep the first N (a folder dataset
    decodes only those). ``name`` may be ``auto`` (see the module doc).
    """
    if name.lower() not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    for flag, n in (("--limit_train", limit_train), ("--limit_valid", limit_valid)):
        if n is not None and n <= 0:
            raise ValueError(f"{flag} must be positive, got {n}")
    if valid not in ("test", "none"):
        portion = float(valid)
        if not 0.0 < portion < 1.0:
            raise ValueError(f"--train_portion must be in (0, 1), got {portion}")
    root = Path(data_path)
    name = resolve_dataset(name, root)
    if name == "folder" or (not has_torchvision_files(name, root) and has_folder_layout(root)):
        if not root.is_dir():
            raise _missing("folder dataset", root, "the folder does not exist")
        if name != "folder":
            log.info("%s: reading the folder layout in %s (train/<class>/, test/<class>/)", name, root)
        tx, ty, vx, vy, n_classes = _load_folder(root, valid, limit_train, limit_valid)
    else:
        if not root.is_dir() and not download:
            raise _missing(name, root, "the folder does not exist")
        root.mkdir(parents=True, exist_ok=True)
        x, y = _torchvision_split(name, root, True, download)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y).long()
        n_classes = int(ty.max()) + 1
        vx = vy = None
        if valid == "test":
            x, y = _torchvision_split(name, root, False, download)
            vx, vy = torch.from_numpy(x), torch.from_numpy(y).long()
        elif valid == "none":
            vx, vy = tx[:0], ty[:0]
        else:
            split = int(len(ty) * float(valid))
            tx, ty, vx, vy = tx[:split], ty[:split], tx[split:], ty[split:]
        if limit_train:
            tx, ty = tx[:limit_train], ty[:limit_train]
        if limit_valid:
            vx, vy = vx[:limit_valid], vy[:limit_valid]
    if len(ty) == 0 or (len(vy) == 0 and valid != "none"):
        raise NASError(f"{name} at {root}: empty train or validation split")
    if name in STATS:
        mean, std = STATS[name]
    else:  # folder data: statistics of its own training images
        xs = tx[: min(len(tx), 10000)].float() / 255.0
        mean = tuple(xs.mean(dim=(0, 2, 3)).tolist())
        std = tuple(xs.std(dim=(0, 2, 3)).tolist())
    if image_size:
        tx, vx = resize_uint8(tx, image_size), resize_uint8(vx, image_size)
    return ImageData(name, tx.contiguous(), ty, vx.contiguous(), vy, n_classes, tuple(mean), tuple(std))


def _load_folder(root: Path, valid: str | float, limit_train: int | None, limit_valid: int | None):
    """The folder layout's splits, decoding only the images the limits keep (same order as decoding all)."""
    train = FolderSplit(root, "train")
    n = len(train)
    if valid == "test":
        tx, ty = train.load(_take(n, limit_train))
        test = FolderSplit(root, "test")
        if len(test.classes) != len(train.classes):
            raise NASError(f"{root}: train has {len(train.classes)} classes but test has {len(test.classes)}")
        vx, vy = test.load(_take(len(test), limit_valid))
    elif valid == "none":
        tx, ty = train.load(_take(n, limit_train))
        vx, vy = tx[:0], ty[:0]
    else:
        split = int(n * float(valid))
        if not limit_train and not limit_valid:
            x, y = train.load()
            tx, ty, vx, vy = x[:split], y[:split], x[split:], y[split:]
        else:
            tx, ty = train.load(_take(split, limit_train))
            vx, vy = train.load(_take(n - split, limit_valid, start=split))
    return tx, ty, vx, vy, len(train.classes)


# ----------------------------------------------------------------------------- the fast loader


class TensorLoader:
    """Batches of a uint8 tensor held on ``device``, normalised and augmented there, many batches at a time.

    Augmentation follows DARTS/BPE: random crop with zero padding of ``size/8`` pixels (4 at 32x32,
    2 at BPE's 16x16, so the crop moves the same fraction of the image as crop-then-resize did), a
    horizontal flip with probability 1/2, and cutout of ``cutout`` pixels applied after normalisation.

    Few kernels per batch: the images are kept channels-last (NHWC) and, when augmenting, already
    zero-padded, so crop, flip and shuffle are one gather; normalisation and cutout then run on a chunk
    of up to ~64 MB of batches at once, and each batch is a view of that chunk (channels_last NCHW).
    The numbers are those of doing it batch by batch.
    """

    CHUNK_BYTES = 64 << 20

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, shuffle: bool = False,
                 augment: bool = False, cutout: int = 0, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                 device: torch.device | str = "cpu", drop_last: bool = False, seed: int = 0,
                 channels_last: bool = False):
        if batch_size <= 0:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        self.device = torch.device(device)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.cutout, self.drop_last, self.seed = cutout, drop_last, seed
        self.channels_last = channels_last
        self.shape = tuple(int(s) for s in x.shape[1:])  # C, H, W
        self.pad = max(1, x.shape[-1] // 8) if augment else 0
        p = self.pad
        # NHWC, zero-padded once (the padding is black before normalisation, as torchvision's RandomCrop)
        self.src = F.pad(x, (p, p, p, p)).permute(0, 2, 3, 1).contiguous().to(self.device) if p else \
            x.permute(0, 2, 3, 1).contiguous().to(self.device)
        self.y = y.to(self.device)
        self.mean = torch.tensor(mean, device=self.device) * 255.0
        self.std = torch.tensor(std, device=self.device) * 255.0
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Shuffle and augmentation draws depend on (seed, epoch) only: resumed runs see the same batches."""
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.y)
        C, H, W = self.shape
        g = torch.Generator().manual_seed(child_seed(self.seed, "epoch", self.epoch))
        # every random draw of the epoch at once, moved to the device once
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        if self.augment:
            offs = torch.randint(0, 2 * self.pad + 1, (n, 2), generator=g)
            flips = torch.rand(n, generator=g) < 0.5
        if self.cutout:
            centres = torch.stack([torch.randint(0, H, (n,), generator=g), torch.randint(0, W, (n,), generator=g)], 1)
        order = order.to(self.device, non_blocking=True)
        if self.augment:
            offs, flips = offs.to(self.device, non_blocking=True), flips.to(self.device, non_blocking=True)
            rows = offs[:, 0:1] + torch.arange(H, device=self.device)  # [n, H] source rows of each image
            cols = offs[:, 1:2] + torch.arange(W, device=self.device)  # [n, W]
            cols = torch.where(flips[:, None], cols.flip(1), cols)  # a flip is reversed column order
        if self.cutout:
            centres = centres.to(self.device, non_blocking=True)
        self.epoch += 1
        stop = (n // self.batch_size) * self.batch_size if self.drop_last else n
        per_chunk = max(1, self.CHUNK_BYTES // (4 * C * H * W) // self.batch_size) * self.batch_size
        for c0 in range(0, stop, per_chunk):
            c1 = min(stop, c0 + per_chunk)
            idx = order[c0:c1]
            if self.augment:  # crop + flip + shuffle: one gather from the padded images
                xb = self.src[idx[:, None, None], rows[c0:c1, :, None], cols[c0:c1, None, :]]  # [m, H, W, C]
            else:
                xb = self.src[idx]
            xb = (xb.float() - self.mean) / self.std
            if self.cutout:
                xb = self._cutout(xb, centres[c0:c1])
            xs = xb.permute(0, 3, 1, 2)  # channels_last NCHW view
            ys = self.y[idx]
            for i in range(0, c1 - c0, self.batch_size):
                xv = xs[i:i + self.batch_size]
                # torch 2.14's CPU conv backward crashes on channels_last strides for some tiny shapes when the
                # model is not channels_last: give such a model contiguous batches
                yield (xv if self.channels_last else xv.contiguous()), ys[i:i + self.batch_size]

    def _cutout(self, xb: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        H, W = xb.shape[1:3]
        half = self.cutout // 2
        ys = torch.arange(H, device=xb.device)[None, :]
        xs = torch.arange(W, device=xb.device)[None, :]
        in_y = (ys >= centres[:, 0:1] - half) & (ys < centres[:, 0:1] + half)  # [B, H]
        in_x = (xs >= centres[:, 1:2] - half) & (xs < centres[:, 1:2] + half)  # [B, W]
        hole = in_y[:, :, None] & in_x[:, None, :]
        return xb * (~hole)[..., None].to(xb.dtype)


# ----------------------------------------------------------------------------- CLI helpers


def add_data_args(parser: argparse.ArgumentParser, *, dataset: str = "auto", data_path: str = "data/") -> None:
    """--dataset --data_path --train_portion --limit_train --limit_valid (``--device``: nas.cli.add_runtime_args)."""
    g = parser.add_argument_group("data")
    g.add_argument("--dataset", default=dataset, type=str.lower, choices=DATASETS,
                   help="cifar10, cifar100, svhn (torchvision's files, or train/<class>/ folders under that name), "
                        "folder (train/<class>/, test/<class>/), or auto: cifar10 when --data_path holds "
                        "cifar-10-batches-py/, folder when it holds train/<class>/, else cifar10 downloaded "
                        "(default %(default)s)")
    g.add_argument("--data_path", default=data_path, help="dataset folder (default %(default)s)")
    g.add_argument("--train_portion", type=float, default=None,
                   help="validate on the rest of train instead of the test set (e.g. 0.5)")
    g.add_argument("--limit_train", type=int, default=None, help="use only the first N training images")
    g.add_argument("--limit_valid", type=int, default=None, help="use only the first N validation images")


def data_from_args(args: argparse.Namespace, image_size: int | None) -> ImageData:
    """load_dataset from the flags of add_data_args."""
    valid = "test" if args.train_portion is None else args.train_portion
    return load_dataset(args.dataset, args.data_path, image_size=image_size, valid=valid,
                        limit_train=args.limit_train, limit_valid=args.limit_valid)
