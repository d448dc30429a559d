"""Encoder export: ONNX checked against onnxruntime, ExecuTorch where installed, and the device cost report."""

from __future__ import annotations

import pytest
import torch
from test_obfuscate_data import one_thread  # noqa: F401 (autouse fixture)

from advpriv.obfuscate.export import ExportError, check_executorch, check_onnx, count_macs, device_report, export_executorch, export_onnx
from advpriv.obfuscate.networks import Encoder, Widths


@pytest.fixture
def encoder():
    torch.manual_seed(0)
    E = Encoder(Widths(width=1 / 16))
    for m in E.modules():  # non-trivial batch-norm statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    return E.eval()


def test_onnx_export_matches_onnxruntime(encoder, tmp_path):
    path = export_onnx(encoder, (36, 32), tmp_path / "e.onnx")
    assert check_onnx(path, encoder, torch.rand(3, 3, 36, 32)) < 1e-4  # dynamic batch axis


def test_onnx_check_fails_loudly_on_a_different_model(encoder, tmp_path):
    path = export_onnx(encoder, (36, 32), tmp_path / "e.onnx")
    with torch.no_grad():
        encoder.features[0].weight.add_(0.1)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        check_onnx(path, encoder, torch.rand(1, 3, 36, 32))


def test_full_size_encoder_cost():
    E = Encoder(Widths())
    x = torch.rand(1, 3, 109, 89)
    # VGG16 blocks 1-2 at 109×89: 3·64·9·9701 + 64·64·9·9701 + (64·128 + 128·128)·9·2376.
    assert count_macs(E, x) == 9701 * 9 * (3 * 64 + 64 * 64) + 2376 * 9 * (64 * 128 + 128 * 128)
    assert sum(p.numel() for p in E.parameters()) == 260_928


def test_device_report(encoder, tmp_path):
    path = export_onnx(encoder, (36, 32), tmp_path / "e.onnx")
    r = device_report(encoder, (36, 32), path, repeats=2)
    assert r.feature_shape == (8, 9, 8) and r.feature_bytes_fp32 == 8 * 9 * 8 * 4 == 2 * r.feature_bytes_fp16
    assert r.image_bytes_uint8 == 3 * 36 * 32 and r.latency_ms_torch > 0 and r.latency_ms_onnxruntime > 0


def test_executorch_export_or_a_clear_reason(encoder, tmp_path):
    try:
        path = export_executorch(encoder, (36, 32), tmp_path / "e.pte")
    except ExportError as e:
        assert "pip install executorch" in str(e)
    else:
        assert check_executorch(path, encoder, torch.rand(1, 3, 36, 32)) < 1e-4
