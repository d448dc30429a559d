"""Encoder export: ONNX checked against onnxruntime, ExecuTorch where installed, and the device cost report."""

from __future__ import annotations

import math

import pytest
import torch
from test_obfuscate_data import one_thread  # noqa: F401 (autouse fixture)

from advpriv.obfuscate.export import (
    NOISE_TOLERANCE, ExportError, check_executorch, check_onnx, check_onnx_noise, count_macs, device_report,
    export_executorch, export_onnx, noise_free, noise_std,
)
from advpriv.obfuscate.networks import Encoder, SplitPoint, Widths


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


@pytest.fixture
def noisy_encoder():
    torch.manual_seed(0)
    E = Encoder(Widths(width=1 / 16), SplitPoint(4, 4, (1, 1), noise=0.5, learn_noise=True))
    with torch.no_grad():
        E.bottleneck.log_std.copy_(torch.log(torch.tensor([0.2, 0.5, 1.0, 2.0])).view(4, 1, 1))
    return E.eval()


def test_exported_noise_is_drawn_per_run_with_the_documented_std(noisy_encoder, tmp_path):
    import onnxruntime as ort

    path = export_onnx(noisy_encoder, (36, 32), tmp_path / "e.onnx")
    x = torch.rand(1, 3, 36, 32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    first, second = (session.run(None, {"image": x.numpy()})[0] for _ in range(2))
    assert not (first == second).any()  # every feature redrawn
    diffs = torch.stack([torch.from_numpy(session.run(None, {"image": x.numpy()})[0]) for _ in range(400)])
    with torch.no_grad():
        diffs -= noisy_encoder.clean(x)
    std = diffs.squeeze(1).flatten(1).std(0)  # per channel, over 400 runs of one image
    assert torch.allclose(std, noise_std(noisy_encoder), rtol=0.15)
    assert check_onnx_noise(path, noisy_encoder, torch.rand(4, 3, 36, 32)) < NOISE_TOLERANCE


def test_export_check_fails_when_the_noise_node_is_missing(noisy_encoder, tmp_path, monkeypatch):
    import advpriv.obfuscate.export as export

    real = export.export_onnx
    monkeypatch.setattr(export, "export_onnx", lambda encoder, size, path: real(noise_free(encoder), size, path))
    with pytest.raises(ExportError, match="noise is missing"):
        export.export_checked(noisy_encoder, (36, 32), tmp_path / "e.onnx", torch.rand(4, 3, 36, 32))
    monkeypatch.undo()
    with torch.no_grad():  # noise present but at a tenth of its documented std
        noisy_encoder.bottleneck.log_std.sub_(math.log(10))
    path = export_onnx(noisy_encoder, (36, 32), tmp_path / "e.onnx")
    with torch.no_grad():
        noisy_encoder.bottleneck.log_std.add_(math.log(10))
    with pytest.raises(ExportError, match="not the encoder's"):
        check_onnx_noise(path, noisy_encoder, torch.rand(4, 3, 36, 32))
    assert export.export_checked(noisy_encoder, (36, 32), tmp_path / "ok.onnx", torch.rand(4, 3, 36, 32)) < 1e-4
