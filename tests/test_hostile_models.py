"""Hostile model files and options (issue 21, items 1, 2, 8, 9, 10): model files that are code run only behind
--trust-model-code, ONNX external data stays refused, spec options are bounded, `.npy` headers cannot crash the
features service, and user strings cannot break the summary table."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from advpriv.cli import _summarise, app
from advpriv.faces.specs import SpecError, load_embedder, load_judge, parse_spec
from advpriv.feature_wire import FeatureError, decode_features
from advpriv.model_trust import UntrustedModelError, check_export_graph
from advpriv.protect.files import FileReport
from advpriv.targets import load_target

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")
runner = CliRunner()


class Pool(nn.Module):
    """A tiny face embedder: (N,3,S,S) -> (N,3) channel means, plus a weight and a constant to pickle."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))
        self.shift = torch.tensor([0.5, 0.25, 0.125])

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return chips.mean((2, 3)) * self.scale + self.shift


class Touch:
    """Unpickling this creates `path`: the harmless stand-in for arbitrary code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # noqa: ANN204
        return open, (str(self.path), "w")


def exported(path: Path) -> Path:
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(Pool().eval(), (torch.rand(2, 3, 32, 32),), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)
    return path


def rewritten(clean: Path, path: Path, change) -> Path:  # noqa: ANN001
    """A copy of archive `clean` whose members (name without the archive's root folder -> bytes) pass `change`."""
    with zipfile.ZipFile(clean) as archive:
        root = archive.namelist()[0].split("/")[0]
        members = {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}
    change(members)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(f"{root}/{name}", data)
    return path


def pickled_weight(marker: Path):  # noqa: ANN201
    """Mark the first weight `use_pickle` and make its payload a pickle that creates `marker`: the reported attack."""

    def change(members: dict[str, bytes]) -> None:
        config = json.loads(members["data/weights/model_weights_config.json"])
        entry = next(iter(config["config"].values()))
        entry["use_pickle"] = True
        members["data/weights/model_weights_config.json"] = json.dumps(config).encode()
        members[f"data/weights/{entry['path_name']}"] = pickle.dumps(Touch(marker), protocol=2)

    return change


def opaque_constant(marker: Path):  # noqa: ANN201
    def change(members: dict[str, bytes]) -> None:
        config = json.loads(members["data/constants/model_constants_config.json"])
        entry = next(iter(config["config"].values()))
        entry["path_name"] = "opaque_obj_0"
        members["data/constants/model_constants_config.json"] = json.dumps(config).encode()
        members["data/constants/opaque_obj_0"] = pickle.dumps(Touch(marker))

    return change


def legacy_weights(marker: Path):  # noqa: ANN201
    def change(members: dict[str, bytes]) -> None:
        members["data/weights/model.pt"] = pickle.dumps(Touch(marker), protocol=2)

    return change


def sample_inputs(marker: Path):  # noqa: ANN201
    """Sample inputs that `weights_only=True` refuses: torch.export then unpickles them in full."""

    def change(members: dict[str, bytes]) -> None:
        members["data/sample_inputs/model.pt"] = pickle.dumps(Touch(marker), protocol=2)

    return change


def compiled_library(marker: Path):  # noqa: ANN201
    def change(members: dict[str, bytes]) -> None:
        members["data/aotinductor/model/model.so"] = b"\x7fELF"

    return change


@pytest.mark.parametrize("attack", [pickled_weight, opaque_constant, legacy_weights, sample_inputs, compiled_library])
def test_a_pt2_that_would_unpickle_or_load_code_is_refused_before_loading(tmp_path: Path, attack) -> None:  # noqa: ANN001
    marker = tmp_path / "written-by-the-model"
    evil = rewritten(exported(tmp_path / "clean.pt2"), tmp_path / "evil.pt2", attack(marker))
    with pytest.raises(SpecError, match=r"evil.pt2.*unpickle.*--trust-model-code"):
        load_embedder(f"{evil}:similarity=0.3")
    assert not marker.exists()


def test_the_reported_pt2_runs_code_only_when_trusted(tmp_path: Path) -> None:
    marker = tmp_path / "written-by-the-model"
    evil = rewritten(exported(tmp_path / "clean.pt2"), tmp_path / "evil.pt2", pickled_weight(marker))
    photo = tmp_path / "a.png"
    Image.new("RGB", (64, 64)).save(photo)
    for option in ("--target", "--embedder"):
        result = runner.invoke(app, ["protect", str(photo), "-o", str(tmp_path / "out"), option,
                                     f"{evil}:similarity=0.3"], terminal_width=400)
        said = " ".join(result.output.split())
        assert result.exit_code == 2 and "unpickle" in said and "--trust-model-code" in said, said
        assert not marker.exists() and not (tmp_path / "out").exists()
    with pytest.raises(SpecError):
        load_embedder(f"{evil}:similarity=0.3", trust_code=True)
    assert marker.exists()  # the probe is real: trusted, torch unpickled it


def test_a_clean_pt2_needs_no_trust(tmp_path: Path) -> None:
    embedder = load_embedder(f"{exported(tmp_path / 'clean.pt2')}:similarity=0.3")
    assert embedder(torch.rand(2, 3, 32, 32)).shape == (2, 3)


def test_a_graph_calling_a_file_operation_is_refused() -> None:
    graph = torch.fx.Graph()
    chips = graph.placeholder("chips")
    mapped = graph.call_function(torch.ops.aten.from_file.default, ("/tmp/x", True, 4))
    graph.output(graph.call_function(torch.ops.aten.add.Tensor, (chips, mapped)))
    with pytest.raises(UntrustedModelError, match="aten.from_file.*--trust-model-code"):
        check_export_graph(torch.fx.GraphModule(nn.Module(), graph), "evil.pt2")
    check_export_graph(torch.export.export(Pool(), (torch.rand(1, 3, 8, 8),)).module(), "clean.pt2")


class MapsAFile(nn.Module):
    """A TorchScript model whose forward creates and writes a file (the reported probe)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        mapped = torch.from_file(self.path, shared=True, size=16)
        mapped.fill_(1.0)
        return chips.mean((2, 3)) + mapped[:3]


def test_torchscript_runs_only_when_trusted(tmp_path: Path) -> None:
    marker = tmp_path / "mapped"
    model = tmp_path / "evil.pt"
    torch.jit.script(MapsAFile(str(marker))).save(str(model))
    with pytest.raises(SpecError, match="TorchScript is code.*--trust-model-code"):
        load_embedder(f"{model}:threshold=0.4")
    with pytest.raises(ValueError, match="TorchScript is code.*--trust-model-code"):
        load_target(str(model))
    photo = tmp_path / "a.png"
    Image.new("RGB", (64, 64)).save(photo)
    options = (["--target", f"{model}:threshold=0.4"], ["--embedder", f"{model}:threshold=0.4"], ["--target", str(model)])
    for command, option in [(command, option) for command in ("protect", "batch") for option in options]:
        result = runner.invoke(app, [command, str(photo), "-o", str(tmp_path / "out"), *option], terminal_width=400)
        said = " ".join(result.output.split())
        assert result.exit_code == 2 and "TorchScript is code" in said and "--trust-model-code" in said, said
    assert not marker.exists()
    load_embedder(f"{model}:threshold=0.4", trust_code=True)
    assert marker.stat().st_size == 64  # the probe is real: trusted, the check ran its forward


def test_serve_refuses_a_torchscript_target_without_trust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "net.pt"
    torch.jit.script(nn.Flatten()).save(str(model))
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: pytest.fail("it served an untrusted TorchScript target"))
    result = runner.invoke(app, ["serve", "--add-target", f"net={model}"], terminal_width=400)
    assert result.exit_code == 2 and "--trust-model-code" in " ".join(result.output.split()), result.output


def test_serve_runs_a_trusted_torchscript_target(tmp_path: Path) -> None:
    import httpx
    from serving import running_server

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    model = tmp_path / "net.pt"
    torch.jit.script(net).save(str(model))
    photo = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (36, 48, 3), dtype=np.uint8)).save(photo)
    with running_server("--add-target", f"net={model}", "--trust-model-code", "--timeout", "60") as url:
        reply = httpx.post(f"{url}/v1/protect", files={"image": ("a.png", photo.read_bytes())},
                           data={"target": "net", "strength": "low"}, timeout=120)
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/hostname"])
def test_onnx_external_data_outside_the_model_folder_is_refused(tmp_path: Path, location: str) -> None:
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [3], [1.0, 1.0, 1.0])
    weight.data_location = TensorProto.EXTERNAL
    del weight.float_data[:]
    weight.external_data.add(key="location", value=location)
    weight.external_data.add(key="length", value="12")
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0), helper.make_node("Mul", ["m", "w"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [weight])
    folder = tmp_path / "models"
    folder.mkdir()
    (tmp_path / "outside.bin").write_bytes(np.ones(3, np.float32).tobytes())
    path = folder / "net.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with pytest.raises(SpecError, match="net.onnx"):
        load_embedder(f"{path}:similarity=0.3")
    with pytest.raises(SpecError, match="net.onnx"):
        load_judge(f"{path}:similarity=0.3")


# ---- 8. .npy headers ----

def npy(header: str, payload: bytes) -> bytes:
    text = header.encode("latin1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + payload


def test_negative_npy_dimensions_are_a_plain_error() -> None:
    body = npy("{'descr':'<f4','fortran_order':False,'shape':(-4,-2,1,1)}", b"\0" * 32)
    with pytest.raises(FeatureError, match=r"shape \(-4, -2, 1, 1\).*negative"):
        decode_features(body, expected=(2, 1, 1))


def test_an_unreadable_npy_header_shows_no_object_address() -> None:
    body = npy("{'descr':'<f4','fortran_order':False,'shape':(os.system,)}", b"\0" * 4)
    with pytest.raises(FeatureError) as error:
        decode_features(body, expected=(1,))
    assert " at 0x" not in str(error.value) and "numpy.save" in str(error.value)


# ---- 9. spec options ----

@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("size=100000", "size must be between 16 and 1024"),
        ("size=20000", "size must be between 16 and 1024"),
        ("size=8", "size must be between 16 and 1024"),
        ("threshold=inf", "threshold must be a finite number"),
        ("similarity=nan", "similarity must be a finite number"),
        ("threshold=0.4,threshold=0.9", "threshold is given twice"),
    ],
)
def test_spec_options_are_bounded(tmp_path: Path, options: str, message: str) -> None:
    path = exported(tmp_path / "dynamic.pt2")
    with pytest.raises(SpecError, match=message):
        load_embedder(f"{path}:{options}" if "threshold" in options or "similarity" in options
                      else f"{path}:similarity=0.3,{options}")
    onnx_path = tmp_path / "judge.onnx"
    onnx_path.write_bytes(b"")
    with pytest.raises(SpecError, match=message):
        load_judge(f"{onnx_path}:{options}" if "threshold" in options or "similarity" in options
                   else f"{onnx_path}:threshold=0.8,{options}")


def test_repeated_keys_are_refused_by_the_parser() -> None:
    with pytest.raises(SpecError, match="name is given twice; give each option once"):
        parse_spec("net.onnx:similarity=0.3,name=a,name=b")


# ---- 10. rich markup in user strings ----

def test_markup_in_names_reaches_the_summary_as_text(tmp_path: Path) -> None:
    photo = tmp_path / "[bold]x.png"
    rgb = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(photo)
    out = tmp_path / "[red]out"
    result = runner.invoke(app, ["protect", str(photo), "-o", str(out), "--target", "toy_models:tiny_classifier",
                                 "--steps", "5", "--strength", "low"], terminal_width=400)
    assert result.exit_code in (0, 1), result.output
    assert "[bold]x.png" in result.output and "[red]out" in result.output
    assert json.loads((out / "advpriv-metrics.json").read_text())


def test_a_judge_named_like_markup_is_shown_and_recorded(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    verdict = {"detected": True, "distance": 0.9, "matches": False, "threshold": 0.8}
    faces = [{"judges": {"dlib": verdict, "[/x]": verdict}}]
    report = FileReport(input=str(tmp_path / "a.png"), output=str(tmp_path / "a.protected.png"), success=True,
                        before="1 face", after="dlib: 0/1 recognised; [/x]: 0/1 recognised",
                        metrics={"psnr": 40.0, "ssim": 0.99}, faces=faces,
                        variants={"png": {"success": True, "summary": "", "faces": faces},
                                  "jpeg85": {"success": True, "summary": "[/x]", "faces": faces}})
    assert _summarise([report], tmp_path) == 0
    assert "[/x]" in capsys.readouterr().out
    (record,) = json.loads((tmp_path / "advpriv-metrics.json").read_text())
    assert record["after"] == report.after


def test_markup_in_an_obfuscator_run_path_is_shown_as_text(tmp_path: Path) -> None:
    run = tmp_path / "[/x]run"
    result = runner.invoke(app, ["obfuscator", "evaluate", str(run), str(tmp_path)], terminal_width=400)
    assert result.exit_code == 2 and "[/x]run" in result.output and "not a training run" in result.output, result.output
