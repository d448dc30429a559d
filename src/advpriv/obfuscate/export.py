"""Device side: export the encoder to ONNX (checked against onnxruntime) and ExecuTorch, and measure its cost.

Example:
    >>> from advpriv.obfuscate.networks import Encoder, Widths
    >>> E = Encoder(Widths(width=0.125)).eval()
    >>> path = export_onnx(E, (32, 32), "encoder.onnx")          # doctest: +SKIP
    >>> check_onnx(path, E, torch.rand(2, 3, 32, 32)) < 1e-4      # doctest: +SKIP
    True
"""

from __future__ import annotations

import copy
import logging
import os
import statistics
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from advpriv.images import atomic_write

ONNX_TOLERANCE = 1e-4
NOISE_TOLERANCE = 0.2
"""Largest relative error of the exported noise's std per channel (64 runs of 4 images: about 4 % expected)."""


class ExportError(RuntimeError):
    """Export or its numerical check failed; the message says how."""


def export_onnx(encoder: nn.Module, image_size: tuple[int, int], path: str | Path) -> Path:
    """Write the encoder as ONNX (opset 18, torch.export-based) with a dynamic batch axis.

    Input "image" (N,3,H,W) float RGB in [0,1]; output "features".
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # silence notes about torchvision ops we do not use
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # raised inside torch.export, not by our code
        program = torch.onnx.export(encoder.eval(), (torch.rand(2, 3, *image_size),), input_names=["image"],
                                    output_names=["features"], opset_version=18, dynamo=True, verbose=False,
                                    dynamic_shapes=({0: torch.export.Dim("batch")},))
    tmp = path.with_name(f".{path.name}.part")
    try:
        program.save(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def check_onnx(path: str | Path, encoder: nn.Module, x: torch.Tensor, tolerance: float = ONNX_TOLERANCE) -> float:
    """Run the ONNX file with onnxruntime on `x`; return the largest absolute difference from PyTorch.

    Raises ExportError when it exceeds `tolerance`.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        want = encoder.eval()(x).numpy()
    diff = float(abs(got - want).max())
    if diff > tolerance:
        raise ExportError(f"{path}: onnxruntime differs from PyTorch by {diff:.2e} (> {tolerance:.0e}).")
    return diff


def noise_free(encoder: nn.Module) -> nn.Module:
    """A copy of `encoder` without its bottleneck's noise: the same numbers every run, so an export can be checked.

    >>> from advpriv.obfuscate.networks import Encoder, SplitPoint, Widths
    >>> E = Encoder(Widths(0.125), SplitPoint(4, 8, (1, 1), noise=0.5)).eval()
    >>> x = torch.rand(1, 3, 32, 32)
    >>> torch.equal(noise_free(E)(x), E.clean(x)), E.bottleneck.log_std is not None
    (True, True)
    """
    twin = copy.deepcopy(encoder)
    if getattr(twin, "bottleneck", None) is not None:
        twin.bottleneck.log_std = None
    return twin.eval()


def noise_std(encoder: nn.Module) -> torch.Tensor | None:
    """The std of the noise the encoder adds, per feature channel (None: it adds none).

    >>> from advpriv.obfuscate.networks import Encoder, SplitPoint, Widths
    >>> noise_std(Encoder(Widths(0.125), SplitPoint(4, 2, (1, 1), noise=0.5))).tolist()
    [0.5, 0.5]
    """
    bottleneck = getattr(encoder, "bottleneck", None)
    if bottleneck is None or bottleneck.log_std is None:
        return None
    return bottleneck.log_std.detach().exp().flatten()


def check_onnx_noise(path: str | Path, encoder: nn.Module, x: torch.Tensor, runs: int = 64,
                     tolerance: float = NOISE_TOLERANCE) -> float:
    """Run the ONNX file `runs` times on `x` with onnxruntime: its features must scatter about the noise-free
    encoder's with the encoder's noise std in every channel. Returns the largest relative error of that std;
    raises ExportError when it exceeds `tolerance` (a graph without its noise node scatters by 0)."""
    import onnxruntime as ort

    want = noise_std(encoder)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.stack([torch.from_numpy(session.run(None, {"image": x.numpy()})[0]) for _ in range(runs)])
    with torch.no_grad():
        clean = noise_free(encoder)(x)
    measured = (got - clean).transpose(0, 2).flatten(1).pow(2).mean(1).sqrt()  # per channel
    error = float(((measured - want).abs() / want).max())
    if error > tolerance:
        raise ExportError(f"{path}: the exported features scatter with std {measured.tolist()} per channel, not "
                          f"the encoder's {want.tolist()}; the graph's noise is missing or wrong, so do not ship it.")
    return error


def export_checked(encoder: nn.Module, image_size: tuple[int, int], path: str | Path, x: torch.Tensor) -> float:
    """`export_onnx` the encoder (its noise included: the device must add it) and check the conversion with
    `check_onnx` on `x`; a noisy encoder is checked through its `noise_free` twin, and its export's noise with
    `check_onnx_noise`. Returns the max |difference|."""
    export_onnx(encoder, image_size, path)
    if noise_std(encoder) is None:
        return check_onnx(path, encoder, x)
    check_onnx_noise(path, encoder, x)
    path = Path(path)
    twin, twin_path = noise_free(encoder), path.with_name(f".{path.stem}.noise-free.onnx")
    try:
        return check_onnx(export_onnx(twin, image_size, twin_path), twin, x)
    finally:
        twin_path.unlink(missing_ok=True)


def export_executorch(encoder: nn.Module, image_size: tuple[int, int], path: str | Path) -> Path:
    """Write an ExecuTorch .pte (XNNPACK delegate) for batch 1; ExportError if executorch is not installed."""
    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
    except ImportError as e:
        raise ExportError(
            f"ExecuTorch is not available ({e}); install it with `pip install executorch` (it must match this torch "
            f"{torch.__version__}), or use the ONNX file."
        ) from None
    program = torch.export.export(encoder.eval(), (torch.rand(1, 3, *image_size),))
    pte = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch()
    return atomic_write(path, pte.buffer)


def check_executorch(path: str | Path, encoder: nn.Module, x: torch.Tensor, tolerance: float = ONNX_TOLERANCE) -> float:
    """Run the .pte with the ExecuTorch runtime on one image `x` (1,3,H,W); return the max |difference| from PyTorch."""
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(str(path)).load_method("forward")
    got = method.execute([x])[0]
    with torch.no_grad():
        diff = float((got - encoder.eval()(x)).abs().max())
    if diff > tolerance:
        raise ExportError(f"{path}: ExecuTorch differs from PyTorch by {diff:.2e} (> {tolerance:.0e}).")
    return diff


@dataclass
class DeviceReport:
    """Cost of running the encoder on a device and sending its features."""

    parameters: int
    macs: int
    feature_shape: tuple[int, ...]
    feature_bytes_fp32: int
    feature_bytes_fp16: int
    image_bytes_uint8: int
    latency_ms_torch: float
    latency_ms_onnxruntime: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates per image of the convolutions, transposed convolutions and linear layers."""
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            total += module.in_features * module.out_features
        elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            kernel = module.weight[0].numel() if isinstance(module, nn.Conv2d) else module.weight[:, 0].numel()
            spatial = (out if isinstance(module, nn.Conv2d) else inputs[0]).shape[-2:].numel()
            total += kernel * spatial * (module.out_channels if isinstance(module, nn.Conv2d) else module.in_channels)

    counted = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, counted)]
    try:
        with torch.no_grad():
            model.eval()(x[:1])
    finally:
        for h in handles:
            h.remove()
    return total


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def device_report(encoder: nn.Module, image_size: tuple[int, int], onnx_path: str | Path | None = None,
                  repeats: int = 20) -> DeviceReport:
    """Parameters, MACs, bytes per image sent (fp32/fp16 features vs the 8-bit RGB image) and the median
    single-thread CPU latency of one image, in PyTorch and (given an ONNX file) in onnxruntime."""
    encoder = encoder.eval()
    x = torch.rand(1, 3, *image_size)
    with torch.no_grad():
        z = encoder(x)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            torch_ms = _median_ms(lambda: encoder(x), repeats)
    finally:
        torch.set_num_threads(threads)
    ort_ms = None
    if onnx_path is not None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        ort_ms = _median_ms(lambda: session.run(None, {"image": x.numpy()}), repeats)
    return DeviceReport(
        parameters=sum(p.numel() for p in encoder.parameters()),
        macs=count_macs(encoder, x),
        feature_shape=tuple(z.shape[1:]),
        feature_bytes_fp32=z[0].numel() * 4,
        feature_bytes_fp16=z[0].numel() * 2,
        image_bytes_uint8=x[0].numel(),
        latency_ms_torch=torch_ms,
        latency_ms_onnxruntime=ort_ms,
    )
