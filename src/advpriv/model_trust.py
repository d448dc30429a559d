"""Model files that are code, and the one switch that lets them run: `--trust-model-code` (`trust_code=True`).

A TorchScript file is a program: loading it runs its code, and its `forward` may open, write or map files. A
`torch.export` `.pt2` archive is a graph of tensor operations, but torch unpickles parts of it (weights marked
`"use_pickle": true`, custom objects, legacy `.pt` payloads, sample inputs it cannot read safely) and loads
compiled AOTInductor libraries, and a graph may call an operation that writes files (`aten.from_file`, `aten.save`).
Without trust, advpriv refuses TorchScript and inspects a `.pt2` archive before loading it and its graph before
running it. ONNX files need no trust: they are converted from their protobuf, never unpickled.

Example:
    >>> require_trust("net.pt", trusted=False)
    Traceback (most recent call last):
    ...
    advpriv.model_trust.UntrustedModelError: net.pt is a TorchScript file, and TorchScript is code: ...
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from torch import nn

TRUST_FLAG = "--trust-model-code"
TRUST_HINT = (f"run it only if you trust where it came from: add {TRUST_FLAG} (trust_code=True in Python), or "
              "export the model to ONNX, which needs no trust")
TRUST_HELP = "Load TorchScript and pickle-holding .pt2 model files: they are code (ONNX is not)."
FILE_ARGUMENTS = ("filename", "path", "file")

# Members of a torch.export archive, as torch's reader lists them, that load as plain data or JSON
_PLAIN = ("archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id")
_DATA_DIRS = {"data/weights/": "weight_", "data/constants/": "tensor_"}


class UntrustedModelError(ValueError):
    """A model file that could run code, given without `--trust-model-code`; the message says what to do."""


UNTRUSTED_TORCHSCRIPT = ("a TorchScript file, and TorchScript is code: loading and running it can do anything you "
                         f"can (write files, open connections); {TRUST_HINT}")


def require_trust(path: str | Path, trusted: bool) -> None:
    """Refuse TorchScript `path` unless `trusted`: loading and running it executes its code."""
    if not trusted:
        raise UntrustedModelError(f"{path} is {UNTRUSTED_TORCHSCRIPT}")


def check_export_archive(path: str | Path) -> None:
    """Refuse a `torch.export` archive whose loading would unpickle or load compiled code: every member must be
    one that torch reads as JSON or raw tensor bytes, or sample inputs that load with `weights_only=True`.
    Raises UntrustedModelError naming the member; ValueError (a bad payload config) or torch's RuntimeError (not a
    zip archive) when it is not a torch.export archive."""
    reader = torch._C.PyTorchFileReader(str(path))
    members = reader.get_all_records()
    raw = {directory: set() for directory in _DATA_DIRS}
    for name in members:
        if name.endswith("_config.json") and name.startswith(tuple(_DATA_DIRS)):
            directory = next(d for d in _DATA_DIRS if name.startswith(d))
            raw[directory] |= _raw_payloads(path, name, reader.get_record(name), _DATA_DIRS[directory])
    for name in members:
        directory = next((d for d in _DATA_DIRS if name.startswith(d)), None)
        if name in _PLAIN or name.startswith("extra/") or (name.startswith("models/") and name.endswith(".json")):
            continue
        if directory and (name.endswith("_config.json") or name[len(directory):] in raw[directory]):
            continue
        if name.startswith("data/sample_inputs/") and name.endswith(".pt") and _plain_tensors(reader.get_record(name)):
            continue
        raise UntrustedModelError(f"{path} holds {name!r}, which torch would unpickle or load as compiled code; "
                                  f"save the model again with torch.export.save of plain tensors, or {TRUST_HINT}")


def check_export_graph(module: nn.Module, path: str | Path) -> None:
    """Refuse a loaded `torch.export` graph that calls an operation taking a file name (`aten.from_file`,
    `aten.save`): running it would read or write files."""
    for graph_module in module.modules():
        graph = getattr(graph_module, "graph", None)
        for node in getattr(graph, "nodes", ()):
            schema = getattr(node.target, "_schema", None)
            if node.op == "call_function" and schema and any(a.name in FILE_ARGUMENTS for a in schema.arguments):
                raise UntrustedModelError(f"{path} calls {node.target}, which reads or writes files when the model "
                                          f"runs; {TRUST_HINT}")


def _raw_payloads(path: str | Path, name: str, config: bytes, prefix: str) -> set[str]:
    """The payload files a weights or constants config names, if each is raw tensor bytes (not a pickle)."""
    try:
        entries = json.loads(config)["config"].values()
        payloads = {(entry["path_name"], entry.get("use_pickle", False)) for entry in entries}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(f"its {name} is not a payload config") from None
    for payload, pickled in payloads:
        if pickled is not False or not isinstance(payload, str) or not payload.startswith(prefix):
            raise UntrustedModelError(f"{path}: {name} asks torch to unpickle {payload!r}, and unpickling runs "
                                      f"code; save the model again with plain tensor weights, or {TRUST_HINT}")
    return {payload for payload, _ in payloads}


def _plain_tensors(data: bytes) -> bool:
    """Whether torch reads `data` with `weights_only=True` (else torch.export would unpickle it in full)."""
    try:
        torch.load(io.BytesIO(data), weights_only=True)
    except Exception:  # noqa: BLE001 - whatever torch raises, the member is not plain tensors
        return False
    return True
