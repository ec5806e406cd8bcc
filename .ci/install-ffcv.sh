#!/usr/bin/env bash
# Install FFCV (optional extra used by search_evolutionary.py --train_path and write_ffcv.py).
# Idempotent: does nothing when `import ffcv` already works in the venv.
# Measured on the CI machine kind (Debian 12, Python 3.11, CPU): apt ~32 s, pip ~22 s.
# pip's opencv wheels ship no pkg-config file, so ffcv's build needs the apt -dev packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
if "$PY" -c "import ffcv, ffcv.loader, ffcv.writer" >/dev/null 2>&1; then
    echo "install-ffcv: ffcv already importable with $PY; nothing to do"
    exit 0
fi
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "install-ffcv: torch must be installed first in $PY" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
if ! pkg-config --exists libturbojpeg opencv4 2>/dev/null; then
    echo "install-ffcv: apt-get install pkg-config libturbojpeg0-dev libopencv-dev"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
        pkg-config libturbojpeg0-dev libopencv-dev
else
    echo "install-ffcv: system libraries (libturbojpeg, opencv4) already present"
fi
echo "install-ffcv: $PY -m pip install ffcv==1.0.2"
if ! "$PY" -m pip install ffcv==1.0.2; then
    # Some pip/setuptools combinations cannot see torch/numpy inside the isolated build env.
    echo "install-ffcv: retrying with --no-build-isolation"
    "$PY" -m pip install --no-build-isolation ffcv==1.0.2
fi
"$PY" -c "import ffcv, ffcv.loader, ffcv.writer; print('install-ffcv: ffcv', ffcv.__version__ if hasattr(ffcv, '__version__') else '1.0.2', 'importable')"
