"""The GPU proof script's CPU fallbacks: it must run here, quickly, and say what it skipped."""

from __future__ import annotations

import torch

from benchmarks import gpu_check


def test_without_cuda_every_gpu_path_is_skipped_and_the_fallback_runs(capsys):
    rows = gpu_check.main(["--device", "cpu", "--seconds", "0"])
    fallback = [r for r in rows if r.path.startswith("cpu fallback")]
    assert len(fallback) == 1 and fallback[0].status == "ok" and fallback[0].fps > 0
    others = [r for r in rows if r not in fallback]
    assert others and all(r.status == "skipped" and r.note == "no CUDA device" for r in others)
    names = " ".join(r.path for r in others)
    for path in ("fp16", "bf16", "compiled", "pinned", "NVENC", "x264", "Gatys", "training"):
        assert path in names
    assert {r.batch for r in others} >= {"1", "4", "8", "16"}
    table = capsys.readouterr().out
    assert table.count("| skipped |") == len(others) and "| ok |" in table


def test_without_pyav_the_end_to_end_rows_are_skipped(monkeypatch):
    monkeypatch.setattr(gpu_check, "have_av", lambda: False)
    checks = gpu_check.Checks(torch.device("cpu"), budget=60, seconds=0)
    row = checks.run(gpu_check.Row("end to end"), lambda: 1.0, needs_cuda=False, needs_av=True)
    assert row.status == "skipped" and "PyAV" in row.note


def test_a_failing_path_is_a_row_not_a_crash():
    checks = gpu_check.Checks(torch.device("cpu"), budget=60, seconds=0)

    def broken():
        raise RuntimeError("CUDA error: out of memory")

    row = checks.run(gpu_check.Row("broken"), broken, needs_cuda=False)
    assert row.status == "failed" and "out of memory" in row.note


def test_rows_past_the_budget_are_skipped():
    checks = gpu_check.Checks(torch.device("cpu"), budget=-1, seconds=0)
    row = checks.run(gpu_check.Row("late"), lambda: 1.0, needs_cuda=False)
    assert row.status == "skipped" and "budget" in row.note
