"""Dataset loading for the obfuscator: CelebA layout, CSV layout, splits, and clear refusals of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from advpriv.obfuscate.data import DataError, load_attributes, split_indices

NAMES = ["Smiling", "Male", "Young"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks run fastest on one thread, and do not fight other processes for the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_dataset(root: Path, n: int = 40, size: tuple[int, int] = (36, 32), layout: str = "celeba") -> Path:
    """A synthetic face-attribute set: Smiling brightens the lower half, Male tints red, Young is random."""
    rng = np.random.default_rng(0)
    images = root / ("img_align_celeba" if layout == "celeba" else "images")
    images.mkdir(parents=True)
    rows = []
    for i in range(n):
        smiling, male, young = int(i % 2 == 0), int(i % 3 == 0), int(rng.integers(2))
        h, w = size
        img = rng.uniform(0.2, 0.5, (h, w, 3))
        img[h // 2:] += 0.4 * smiling
        img[..., 0] += 0.3 * male
        name = f"{i + 1:06d}.jpg"
        Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8)).save(images / name)
        rows.append((name, [smiling, male, young]))
    if layout == "celeba":
        lines = [str(n), " ".join(NAMES)] + [f"{f} " + " ".join("1" if v else "-1" for v in vals) for f, vals in rows]
        (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    else:
        lines = ["file," + ",".join(NAMES)] + [f"{f}," + ",".join(str(v) for v in vals) for f, vals in rows]
        (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def test_celeba_layout(tmp_path):
    data = load_attributes(write_dataset(tmp_path))
    assert data.images.dtype == torch.uint8 and data.images.shape == (40, 3, 36, 32)
    assert data.labels_of("smiling").tolist()[:4] == [1.0, 0.0, 1.0, 0.0]
    x = data.batch(torch.arange(3))
    assert x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1


def test_csv_layout_resize_and_limit(tmp_path):
    data = load_attributes(write_dataset(tmp_path, layout="csv"), image_size=(40, 34), limit=10)
    assert data.images.shape == (10, 3, 40, 34)
    assert data.labels_of("Male").tolist()[:4] == [1.0, 0.0, 0.0, 1.0]


def test_celeba_partition_file_decides_splits(tmp_path):
    root = write_dataset(tmp_path, n=10)
    (root / "list_eval_partition.txt").write_text("".join(f"{i + 1:06d}.jpg {[0, 0, 0, 0, 0, 0, 1, 1, 2, 2][i]}\n" for i in range(10)))
    splits = split_indices(load_attributes(root))
    assert splits["train"].tolist() == list(range(6)) and splits["test"].tolist() == [8, 9]


def test_seeded_splits_are_fixed_and_disjoint(tmp_path):
    data = load_attributes(write_dataset(tmp_path))
    a, b = split_indices(data, seed=3), split_indices(data, seed=3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(set(torch.cat(list(a.values())).tolist())) == 40


def test_missing_attribute_is_named(tmp_path):
    data = load_attributes(write_dataset(tmp_path))
    with pytest.raises(DataError, match="no attribute named 'Bald'.*Smiling, Male, Young"):
        data.labels_of("Bald")


def test_unlabelled_images_are_refused(tmp_path):
    root = write_dataset(tmp_path)
    Image.new("RGB", (32, 36)).save(root / "img_align_celeba" / "stray.png")
    with pytest.raises(DataError, match="1 image\\(s\\) have no row.*stray.png"):
        load_attributes(root)


def test_missing_images_and_bad_labels_are_refused(tmp_path):
    root = write_dataset(tmp_path, layout="csv")
    (root / "images" / "000003.jpg").unlink()
    with pytest.raises(DataError, match="missing.*000003.jpg"):
        load_attributes(root)
    (root / "labels.csv").write_text("file,Smiling\n000001.jpg,maybe\n")
    with pytest.raises(DataError, match="'maybe' is not a binary label"):
        load_attributes(root / "labels.csv")


def test_folder_without_table_says_what_is_needed(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_attributes(tmp_path / "nothing")
    with pytest.raises(DataError, match="exactly one table"):
        load_attributes(tmp_path)
