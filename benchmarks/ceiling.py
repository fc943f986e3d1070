"""The machine's own speed limit: dense matmul throughput, measured in the same run as
the thing being compared with it (these machines are noisy; only ratios carry over)."""

from __future__ import annotations

import time

import torch

MATMUL_SIZE = 2048


def matmul_gflops(dtype: torch.dtype, device: torch.device, seconds: float = 2.0) -> float:
    """Sustained GFLOP/s of a square matmul of `MATMUL_SIZE` in `dtype` on `device`."""
    n = MATMUL_SIZE
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(3):
        torch.mm(a, b)
    synchronize(device)
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        torch.mm(a, b)
        runs += 1
    synchronize(device)
    elapsed = time.perf_counter() - started
    return 2 * n**3 * runs / elapsed / 1e9


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ceilings(device: torch.device) -> dict[str, float]:
    low = torch.float16 if device.type == "cuda" else torch.bfloat16
    return {
        "fp32": matmul_gflops(torch.float32, device),
        ("fp16" if low == torch.float16 else "bf16"): matmul_gflops(low, device),
    }
