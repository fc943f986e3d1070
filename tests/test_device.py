"""Device and precision resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vidstyle import device as device_module
from vidstyle.device import gather_info, resolve_device, resolve_precision
from vidstyle.errors import SettingsError


@pytest.mark.parametrize(("cuda", "mps", "expected"),
                         [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_auto_prefers_cuda_then_mps_then_the_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(device_module, "_mps_available", lambda: mps)
    assert resolve_device("auto").type == expected


def test_asking_for_cuda_without_it_is_a_settings_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SettingsError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_info_lists_cuda_only_where_it_runs(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # a build that sees devices
    info = gather_info()
    assert info["cuda"] is None
    assert [d["device"] for d in info["devices"]] == ["cpu"] + (
        ["mps"] if device_module._mps_available() else []
    )
    assert "libx264" in info["encoders"]


@pytest.mark.parametrize("name", ["tpu", "gpu0", "cuda:banana"])
def test_unknown_device_names_are_rejected(name):
    with pytest.raises(SettingsError, match="device"):
        resolve_device(name)


def test_fp16_on_cpu_is_refused_with_a_reason():
    with pytest.raises(SettingsError, match="fp16"):
        resolve_precision("fp16", torch.device("cpu"))


@pytest.mark.parametrize(("native", "expected"), [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_precision_on_cpu_is_bf16_only_where_the_cpu_has_it(monkeypatch, native, expected):
    # Emulated bf16 is slower than fp32 (docs/performance.md), so the probe decides.
    monkeypatch.setattr(device_module, "cpu_has_fast_bf16", lambda: native)
    assert resolve_precision("auto", torch.device("cpu")) == expected


def cpu_flags() -> set[str] | None:
    """The x86 feature flags Linux reports for this CPU, or None where it reports none."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    lines = [line for line in text.splitlines() if line.startswith("flags")]
    return set(lines[0].split(":", 1)[1].split()) if lines else None


def test_the_bf16_probe_agrees_with_the_cpu_flags():
    flags = cpu_flags()
    if flags is None:
        pytest.skip("no x86 flags in /proc/cpuinfo to compare the probe with")
    if flags & {"avx512_bf16", "amx_bf16"}:
        assert resolve_precision("auto", torch.device("cpu")) == torch.bfloat16
    elif "avx512f" not in flags:
        assert resolve_precision("auto", torch.device("cpu")) == torch.float32
    else:
        pytest.skip("AVX-512 without native bf16: oneDNN's own probe decides")
