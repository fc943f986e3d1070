"""Device and precision resolution."""

from __future__ import annotations

import pytest
import torch

from vidstyle.device import resolve_device, resolve_precision
from vidstyle.errors import SettingsError


def test_auto_picks_an_available_device():
    device = resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else device.type
    assert device.type == expected


@pytest.mark.parametrize("name", ["tpu", "gpu0", "cuda:banana"])
def test_unknown_device_names_are_rejected(name):
    with pytest.raises(SettingsError, match="device"):
        resolve_device(name)


def test_fp16_on_cpu_is_refused_with_a_reason():
    with pytest.raises(SettingsError, match="fp16"):
        resolve_precision("fp16", torch.device("cpu"))


def test_auto_precision_on_cpu_is_bf16_or_fp32():
    assert resolve_precision("auto", torch.device("cpu")) in (torch.bfloat16, torch.float32)
