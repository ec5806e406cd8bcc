"""Kernel launches per step and the GPU-busy fraction of a step function, read from torch.profiler.

``profile_steps(fn, n, device)`` runs ``fn`` ``n`` times under the profiler and returns
``launches_per_step`` (host-side launch calls: cudaLaunchKernel and its variants, cudaGraphLaunch, async
copies and memsets), ``kernels_per_step`` (device-side kernels and copies the trace shows, graph replays'
kernels included when CUPTI reports them) and ``gpu_busy`` (the union of device activity over the profiled
wall time). Anything the profiler of this PyTorch cannot give is "n/a"; on a CPU everything is "n/a".
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

LAUNCH_CALLS = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx", "cudaGraphLaunch",
                "cuGraphLaunch", "cudaMemcpyAsync", "cudaMemsetAsync")


def _union_length(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def _raw_events(prof: Any) -> list[tuple[bool, str, float, float]]:
    """(on the device?, name, start us, end us) of every event the kineto trace holds."""
    out = []
    for e in prof.profiler.kineto_results.events():
        dev = str(e.device_type()).upper()
        start = e.start_ns() / 1e3 if hasattr(e, "start_ns") else float(e.start_us())
        dur = e.duration_ns() / 1e3 if hasattr(e, "duration_ns") else float(e.duration_us())
        out.append(("CUDA" in dev, e.name(), start, start + dur))
    return out


def profile_steps(fn: Callable[[], None], n: int, device: torch.device) -> dict[str, Any]:
    """Launches and kernels per call of ``fn`` and the GPU-busy fraction over ``n`` calls ("n/a" off CUDA)."""
    na = {"launches_per_step": "n/a", "kernels_per_step": "n/a", "gpu_busy": "n/a"}
    if device.type != "cuda":
        return na
    try:
        from torch.profiler import ProfilerActivity, profile

        torch.cuda.synchronize(device)
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            torch.cuda.synchronize(device)
            wall_us = (time.perf_counter() - t0) * 1e6
        events = _raw_events(prof)
    except Exception as exc:  # noqa: BLE001 - a profiler that cannot trace here leaves the numbers n/a
        return {**na, "profiler_error": f"{type(exc).__name__}: {exc}"[:300]}
    launches = sum(1 for on_dev, name, _, _ in events if not on_dev and name in LAUNCH_CALLS)
    device_iv = [(a, b) for on_dev, _, a, b in events if on_dev]
    host = [(a, b) for on_dev, _, a, b in events if not on_dev]
    span = (max(b for _, b in host) - min(a for a, _ in host)) if host else wall_us
    busy = _union_length(device_iv) / max(span, 1e-9) if device_iv else "n/a"
    return {"launches_per_step": round(launches / n, 1), "kernels_per_step": round(len(device_iv) / n, 1),
            "gpu_busy": round(busy, 3) if isinstance(busy, float) else busy}
