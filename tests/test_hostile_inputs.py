"""Hostile files (issue 21, items 11 and 12): an AVIF whose header lies about its size, tampered obfuscator run
folders (config.json, safetensors) and attribute tables. Each must get one clear error naming the file, never a
traceback or an allocation sized by the attacker."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_obfuscate_data import NAMES, write_dataset

from advpriv.images import ImageError, load_image
from advpriv.obfuscate import TrainConfig, load_attributes, load_run
from advpriv.obfuscate.checkpoint import CONFIG, OBFUSCATOR, RunError, build_parties, save_weights
from advpriv.obfuscate.data import DataError

TINY = TrainConfig(width=1 / 16, fc=8, image_size=(32, 32))


# ---- 11. an AVIF whose header lies ----

def avif(side: int, stated: int | None = None, mode: str = "RGB") -> bytes:
    """A flat AVIF of side×side pixels (a few hundred bytes); its `ispe` box patched to say stated×stated."""
    pixels = np.full((side, side, len(mode)), 128, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, mode).save(buf, "AVIF", speed=10)
    data = bytearray(buf.getvalue())
    if stated is not None:
        at = data.find(b"ispe") + 8  # after the type and the full box's version and flags
        data[at:at + 8] = stated.to_bytes(4, "big") * 2
    return bytes(data)


def test_an_avif_whose_header_lies_is_refused_before_decoding():
    lying = avif(1600, stated=200)
    with Image.open(io.BytesIO(lying)) as im:
        assert im.size == (200, 200)  # what Pillow, and a check of the header alone, would go by
    with pytest.raises(ImageError, match=r"lying.avif: its header says 200×200 but its AV1 data is 1600×1600"):
        load_image(io.BytesIO(lying), name="lying.avif")
    with pytest.raises(ImageError, match=r"1600×1600 = 2,560,000 pixels, over the limit of 1,000,000") as caught:
        load_image(io.BytesIO(lying), max_pixels=1_000_000, name="lying.avif")
    assert caught.value.kind == "too_large"


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_an_honest_avif_decodes(tmp_path, mode):
    (tmp_path / "a.avif").write_bytes(avif(64, mode=mode))
    assert load_image(tmp_path / "a.avif").shape == (3, 64, 64)


@pytest.mark.parametrize("cut", [40, 200, -20])
def test_a_truncated_avif_gets_an_error_naming_it(cut):
    with pytest.raises(ImageError, match="cut.avif"):
        load_image(io.BytesIO(avif(64)[:cut]), name="cut.avif")


# ---- 12. obfuscator run folders and attribute tables ----


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    """A run folder with untrained weights: enough to load, nothing to train."""
    TINY.save(tmp_path / CONFIG)
    parties = build_parties(TINY)
    save_weights(tmp_path / OBFUSCATOR, {"E": parties["E"], "C": parties["C"]})
    return tmp_path


def test_an_untampered_run_loads(run_folder):
    assert load_run(run_folder).encoder()(torch.rand(1, 3, 32, 32)).shape[0] == 1


@pytest.mark.parametrize("config", [
    b"\x00garbage{", b"[1, 2, 3]", b'"a string"', json.dumps({**json.loads(TINY.to_json()), "fc": 2e9}).encode(),
    json.dumps({**json.loads(TINY.to_json()), "fc": 2_000_000_000}).encode(),
    json.dumps({**json.loads(TINY.to_json()), "image_size": [100000, 100000]}).encode(),
    json.dumps({**json.loads(TINY.to_json()), "image_size": [4096, 4096], "width": 8.0, "fc": 65536}).encode(),
    json.dumps({**json.loads(TINY.to_json()), "image_size": [32]}).encode(),
    json.dumps({**json.loads(TINY.to_json()), "image_size": None}).encode(),
    json.dumps({**json.loads(TINY.to_json()), "width": -1}).encode(),
    json.dumps({**json.loads(TINY.to_json()), "width": "wide"}).encode(),
    json.dumps({**json.loads(TINY.to_json()), "split": 9}).encode(),
    json.dumps({**json.loads(TINY.to_json()), "batch_size": True}).encode(),
    json.dumps({**json.loads(TINY.to_json()), "private_loss": ["x"]}).encode(),
    b"[" * 100_000,
])
def test_a_tampered_config_gets_one_error_naming_it(run_folder, config):
    (run_folder / CONFIG).write_bytes(config)
    with pytest.raises(RunError, match=str(run_folder / CONFIG).replace("\\", "\\\\")) as caught:
        load_run(run_folder).encoder()
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400


def tamper_weights(path: Path, how: str) -> None:
    if how == "garbage":
        path.write_bytes(b"not a safetensors file at all")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif how == "huge header":
        path.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    else:
        wider = build_parties(TrainConfig(width=1 / 8, fc=8, image_size=(32, 32)))
        modules = {"E": wider["E"], "C": wider["C"]} if how == "wrong shapes" else {"E": wider["E"]}
        save_weights(path, modules)


@pytest.mark.parametrize("how", ["garbage", "truncated", "huge header", "wrong shapes", "missing keys"])
def test_tampered_weights_get_one_error_naming_them(run_folder, how):
    tamper_weights(run_folder / OBFUSCATOR, how)
    with pytest.raises(RunError, match="obfuscator.safetensors") as caught:
        load_run(run_folder).encoder()
    assert "\n" not in str(caught.value)


def advpriv(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "advpriv", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_serve_refuses_a_tampered_run_at_start_up(run_folder):
    (run_folder / CONFIG).write_text(json.dumps({**json.loads(TINY.to_json()), "image_size": [100000, 100000]}))
    done = advpriv("serve", "--port", "1", "--features-run", str(run_folder))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert str(run_folder / CONFIG) in done.stderr and "image_size" in done.stderr
    tamper_weights(run_folder / OBFUSCATOR, "garbage")
    TINY.save(run_folder / CONFIG)
    done = advpriv("serve", "--port", "1", "--features-run", str(run_folder))
    assert done.returncode == 2 and "Traceback" not in done.stderr and OBFUSCATOR in done.stderr


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path):
    root = write_dataset(tmp_path, n=6, layout="csv")
    table = root / "labels.csv"
    table.write_bytes(b"\xef\xbb\xbf" + table.read_bytes())
    assert load_attributes(table).names == list(NAMES)


@pytest.mark.parametrize("layout", ["csv", "celeba"])
@pytest.mark.parametrize("conflicting", [True, False])
def test_an_image_listed_twice_is_refused(tmp_path, layout, conflicting):
    root = write_dataset(tmp_path, n=6, layout=layout)
    table = root / ("labels.csv" if layout == "csv" else "list_attr_celeba.txt")
    lines = table.read_text().splitlines()
    sep = "," if layout == "csv" else " "
    name, *values = lines[-1].split(sep)
    flipped = {"1": "0", "0": "1", "-1": "1"} if layout == "csv" else {"1": "-1", "-1": "1"}
    copy = sep.join([name, *(flipped[v] if conflicting else v for v in values)])
    table.write_text("\n".join(lines + [copy]) + "\n")
    with pytest.raises(DataError, match=f"{name} is listed {'with different labels' if conflicting else 'twice'}"):
        load_attributes(root)
