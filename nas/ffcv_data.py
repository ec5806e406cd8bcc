"""Optional FFCV path: write ``cifar_train.beton`` / ``cifar_test.beton`` and load them as PertNAS does.

FFCV is imported lazily, so the toolkit works without it; every entry point that needs it calls
``require_ffcv()``, which turns a missing install into one clear ``NASError``. The writer follows
FFCV's ``examples/cifar/write_datasets.py`` (``RGBImageField`` + ``IntField``, raw pixels); the loader
follows PertNAS ``dataloader/ffcv_cifar10loader.py`` (train: flip, translate by 2, cutout 8 filled
with the mean, then normalise; test: normalise only). A small ``ffcv_meta.json`` written next to the
files records the class count and channel statistics, so data other than CIFAR-10 normalises right.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.transforms import Normalize

from nas.errors import NASError
from nas.io import atomic_write_json, read_json

log = logging.getLogger(__name__)

SPLIT_FILES = {"train": "cifar_train.beton", "test": "cifar_test.beton"}
META_FILE = "ffcv_meta.json"
# PertNAS ffcv_cifar10loader.py: CIFAR-10 statistics in the uint8 range [0, 255]
CIFAR10_MEAN_255 = (125.307, 122.961, 113.8575)
CIFAR10_STD_255 = (51.5865, 50.847, 51.255)
INSTALL_HINT = ("ffcv is not installed: run .ci/install-ffcv.sh (apt-get install pkg-config libturbojpeg0-dev "
                "libopencv-dev; pip install ffcv==1.0.2), or use --data_path with the toolkit's own loader")


def ffcv_available() -> bool:
    """True when ``import ffcv`` (loader and writer) works."""
    try:
        require_ffcv()
    except NASError:
        return False
    return True


def require_ffcv() -> Any:
    """Import ffcv or raise one clear NASError saying how to install it."""
    try:
        import ffcv
        import ffcv.loader  # noqa: F401
        import ffcv.writer  # noqa: F401
    except Exception as exc:  # ImportError, or a broken native build (OSError on libturbojpeg)
        raise NASError(f"{INSTALL_HINT} ({type(exc).__name__}: {str(exc).splitlines()[0][:100]})") from None
    return ffcv


class _ArrayDataset:
    """Indexable (HWC uint8 image, int label) pairs, what FFCV's DatasetWriter reads."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x = x.permute(0, 2, 3, 1).contiguous().numpy()  # NCHW -> NHWC
        self.y = y.numpy().astype(np.int64)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.x[i], int(self.y[i])


def write_beton(path: str | Path, x: torch.Tensor, y: torch.Tensor, *, num_workers: int = 1) -> None:
    """Write uint8 NCHW images and labels to one .beton file (raw RGB pixels, as FFCV's CIFAR example)."""
    require_ffcv()
    from ffcv.fields import IntField, RGBImageField
    from ffcv.writer import DatasetWriter

    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"write_beton needs uint8 [N, 3, H, W] images, got {x.dtype} {tuple(x.shape)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    writer = DatasetWriter(str(tmp), {"image": RGBImageField(), "label": IntField()}, num_workers=num_workers)
    writer.from_indexed_dataset(_ArrayDataset(x, y))
    tmp.replace(path)  # a killed write never leaves a half .beton under the real name


def write_split_files(out_dir: str | Path, data, *, num_workers: int = 1, overwrite: bool = False) -> dict[str, Any]:
    """cifar_train.beton + cifar_test.beton + ffcv_meta.json from an ``ImageData``; refuses to clobber."""
    out = Path(out_dir)
    targets = [out / f for f in SPLIT_FILES.values()]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise NASError(f"{', '.join(existing)} already exist; pass --overwrite to replace them")
    write_beton(out / SPLIT_FILES["train"], data.train_x, data.train_y, num_workers=num_workers)
    write_beton(out / SPLIT_FILES["test"], data.valid_x, data.valid_y, num_workers=num_workers)
    meta = {"dataset": data.name, "n_classes": int(data.n_classes), "n_train": len(data.train_y),
            "n_test": len(data.valid_y), "image_size": int(data.train_x.shape[-1]),
            "mean_255": [m * 255.0 for m in data.mean], "std_255": [s * 255.0 for s in data.std]}
    atomic_write_json(out / META_FILE, meta)
    return meta


def read_meta(train_path: str | Path) -> dict[str, Any]:
    """The folder's ffcv_meta.json, or CIFAR-10 defaults for .beton files written by FFCV's own script."""
    p = Path(train_path) / META_FILE
    if p.exists():
        return read_json(p)
    return {"dataset": "cifar10", "n_classes": 10, "mean_255": list(CIFAR10_MEAN_255),
            "std_255": list(CIFAR10_STD_255)}


def check_split_files(train_path: str | Path) -> None:
    """Clear error naming the folder and the files it must hold."""
    root = Path(train_path)
    missing = [f for f in SPLIT_FILES.values() if not (root / f).is_file()]
    if missing:
        raise NASError(f"--train_path {root}: missing {', '.join(missing)} (write them with "
                       f"`python write_ffcv.py --dataset cifar10 --data_path DATA --out {root}`)")


def ffcv_loader(train_path: str | Path, split: str, *, batch_size: int, device: torch.device | str,
                train: bool, num_workers: int = 2, seed: int = 0, limit: int | None = None,
                cutout: int = 8, translate: int = 2, drop_last: bool | None = None, half: bool | None = None):
    """An FFCV ``Loader`` over ``cifar_{split}.beton`` with PertNAS' pipeline, yielding (images, labels)."""
    require_ffcv()
    from ffcv.fields.decoders import IntDecoder, SimpleRGBImageDecoder
    from ffcv.loader import Loader, OrderOption
    from ffcv.transforms import Convert, Cutout, RandomHorizontalFlip, RandomTranslate, ToDevice, ToTensor, ToTorchImage
    from ffcv.transforms.common import Squeeze

    check_split_files(train_path)
    meta = read_meta(train_path)
    device = torch.device(device)
    if half is None:
        half = device.type == "cuda"  # PertNAS converts to float16 on the GPU (AMP); float32 on CPU
    label_pipe = [IntDecoder(), ToTensor(), ToDevice(device, non_blocking=True), Squeeze()]
    image_pipe: list = [SimpleRGBImageDecoder()]
    if train:
        image_pipe += [RandomHorizontalFlip(), RandomTranslate(padding=translate)]
        if cutout:
            image_pipe.append(Cutout(cutout, tuple(int(m) for m in meta["mean_255"])))  # before normalising
    image_pipe += [ToTensor(), ToDevice(device, non_blocking=True), ToTorchImage(),
                   Convert(torch.float16 if half else torch.float32),
                   Normalize(meta["mean_255"], meta["std_255"])]
    fname = str(Path(train_path) / SPLIT_FILES[split])
    indices = None
    if limit is not None:
        n = int(meta.get(f"n_{split}", limit))
        indices = np.arange(min(limit, n)) if n else np.arange(limit)
    return Loader(fname, batch_size=batch_size, num_workers=num_workers,
                  order=OrderOption.RANDOM if train else OrderOption.SEQUENTIAL, seed=seed, indices=indices,
                  drop_last=train if drop_last is None else drop_last,
                  pipelines={"image": image_pipe, "label": label_pipe})


def ffcv_loaders(train_path: str | Path, *, batch_size: int, val_batch_size: int, device: torch.device | str,
                 num_workers: int = 2, seed: int = 0, limit_train: int | None = None,
                 limit_valid: int | None = None, cutout: int = 8) -> tuple[Any, Any, dict[str, Any]]:
    """PertNAS ``get_ffcv_loaders``: the train and test loaders and the folder's metadata."""
    tr = ffcv_loader(train_path, "train", batch_size=batch_size, device=device, train=True,
                     num_workers=num_workers, seed=seed, limit=limit_train, cutout=cutout)
    va = ffcv_loader(train_path, "test", batch_size=val_batch_size, device=device, train=False,
                     num_workers=num_workers, seed=seed, limit=limit_valid)
    return tr, va, read_meta(train_path)
