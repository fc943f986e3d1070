"""Device and precision resolution."""

from __future__ import annotations

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


def test_auto_precision_on_cpu_is_bf16_or_fp32():
    assert resolve_precision("auto", torch.device("cpu")) in (torch.bfloat16, torch.float32)
