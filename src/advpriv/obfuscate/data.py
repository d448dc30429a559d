"""Face-attribute datasets: CelebA's own layout, the shared 89×109 subset, or any image folder with a CSV.

Images are decoded once, resized, and kept in memory as uint8 (N,3,H,W); `batch` returns float RGB in [0,1].
Labels are 0/1 (CelebA's -1 becomes 0). Splits are fixed by the seed, or by list_eval_partition.txt when present;
with identities (CelebA's identity_CelebA.txt, or `advpriv.obfuscate.identity.pseudo_identities`) they can keep
each person in one split.

Example:
    >>> data = load_attributes("../shared/data/celeba-attr", limit=100)   # doctest: +SKIP
    >>> data.labels_of("Smiling").shape                                     # doctest: +SKIP
    torch.Size([100])
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from advpriv.images import IMAGE_SUFFIXES, load_image

CELEBA_TABLE = "list_attr_celeba.txt"
CELEBA_PARTITION = "list_eval_partition.txt"
CELEBA_IDENTITY = "identity_CelebA.txt"
FILE_COLUMNS = ("file", "filename", "image", "image_id", "path", "name")
TRUE_VALUES = {"1", "true", "yes", "y", "t"}
FALSE_VALUES = {"-1", "0", "false", "no", "n", "f"}


class DataError(ValueError):
    """The dataset is unusable as given; the message says what is wrong and what to do."""


@dataclass
class AttributeData:
    """Images (uint8, N×3×H×W), binary labels (N×A, 0/1), attribute names, file names, optional CelebA partition,
    optional person of each image (N integers)."""

    images: torch.Tensor
    labels: torch.Tensor
    names: list[str]
    files: list[str]
    partition: torch.Tensor | None = None
    identities: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.images.shape[-2:])

    def labels_of(self, name: str) -> torch.Tensor:
        """The 0/1 float labels of attribute `name` (case-insensitive): (N,), or (N,k) for k comma-separated names."""
        lookup = {n.lower(): i for i, n in enumerate(self.names)}
        wanted = [n.strip() for n in name.split(",")]
        unknown = [n for n in wanted if n.lower() not in lookup]
        if unknown:
            raise DataError(f"no attribute named {unknown[0]!r}; this dataset has: {', '.join(self.names)}.")
        columns = [lookup[n.lower()] for n in wanted]
        return self.labels[:, columns[0] if len(columns) == 1 else columns].float()

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        """Float RGB images in [0,1] for the given indices."""
        return self.images[idx].float().div_(255)


def load_attributes(root: str | Path, image_size: tuple[int, int] | None = None,
                    limit: int | None = None) -> AttributeData:
    """Load a face-attribute dataset from a folder (CelebA layout, or images with one CSV) or from a CSV file.

    CelebA: `list_attr_celeba.txt` with images in `img_align_celeba/`, `images/` or the folder itself, and
    `list_eval_partition.txt` if present. CSV: a header with a file column (file, filename, image, ...) and one
    column per attribute (1/-1, 1/0 or true/false); image paths are relative to the CSV's folder or its `images/`.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such file or folder; give the dataset folder (or its CSV of attributes).")
    if root.is_file():
        table, folder = _read_csv(root), root.parent
    elif (root / CELEBA_TABLE).is_file():
        table, folder = _read_celeba(root / CELEBA_TABLE), root
    else:
        csvs = sorted(root.glob("*.csv"))
        if len(csvs) != 1:
            raise DataError(
                f"{root}: found {len(csvs)} CSV files and no {CELEBA_TABLE}; the folder needs exactly one table of "
                "attributes (CelebA's list_attr_celeba.txt, or one CSV with a file column), or name the CSV directly."
            )
        table, folder = _read_csv(csvs[0]), root
    names, rows = table
    image_dir = _image_dir(folder, [f for f, _ in rows[:20]])
    _check_labelled(image_dir, {f for f, _ in rows})
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise DataError(f"{root}: the attribute table has no rows.")
    images = _decode(image_dir, [f for f, _ in rows], image_size)
    labels = torch.tensor([v for _, v in rows], dtype=torch.uint8)
    files = [f for f, _ in rows]
    identity_file = folder / CELEBA_IDENTITY
    identities = read_identities(identity_file, files) if identity_file.is_file() else None
    return AttributeData(images, labels, names, files, _partition(folder / CELEBA_PARTITION, files), identities)


def read_identities(path: Path, files: list[str]) -> torch.Tensor:
    """The person of each of `files` from a file of `image identity` lines (CelebA's identity_CelebA.txt format).

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "ids.txt"; _ = p.write_text("a.jpg 7\\nb.jpg 3\\n")
    >>> read_identities(p, ["b.jpg", "a.jpg"]).tolist()
    [3, 7]
    """
    known: dict[str, int] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{path}, line {n}: expected 'image identity' (e.g. '000001.jpg 2880'); fix the line.")
        known[parts[0]] = int(parts[1])
    missing = [f for f in files if f not in known]
    if missing:
        raise DataError(f"{path}: {len(missing)} image(s) have no identity (e.g. {missing[0]}); add them, or move "
                        "the file away to split by image.")
    return torch.tensor([known[f] for f in files])


def _read_celeba(path: Path) -> tuple[list[str], list[tuple[str, list[int]]]]:
    lines = path.read_text().splitlines()
    if len(lines) < 3:
        raise DataError(f"{path}: too short for the CelebA format (count line, names line, then one row per image).")
    names = lines[1].split()
    rows = []
    for n, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise DataError(f"{path}, line {n}: {len(parts) - 1} values for {len(names)} attributes; "
                            "fix or remove the row.")
        rows.append((parts[0], [_flag(v, path, n) for v in parts[1:]]))
    return names, _unique(path, rows)


def _read_csv(path: Path) -> tuple[list[str], list[tuple[str, list[int]]]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        lower = [h.lower() for h in header]
        file_col = next((lower.index(c) for c in FILE_COLUMNS if c in lower), None)
        if file_col is None:
            raise DataError(f"{path}: no file column; name one column {' / '.join(FILE_COLUMNS)}.")
        names = [h for i, h in enumerate(header) if i != file_col]
        rows = []
        for n, rec in enumerate(reader, start=2):
            if not any(cell.strip() for cell in rec):
                continue
            if len(rec) != len(header):
                raise DataError(f"{path}, line {n}: {len(rec)} cells for {len(header)} columns; fix the row.")
            rows.append((rec[file_col].strip(), [_flag(v, path, n) for i, v in enumerate(rec) if i != file_col]))
    return names, _unique(path, rows)


def _unique(path: Path, rows: list[tuple[str, list[int]]]) -> list[tuple[str, list[int]]]:
    """The rows, refused when an image is listed twice (its copies would fall in different splits)."""
    seen: dict[str, list[int]] = {}
    for name, labels in rows:
        if name in seen:
            how = "with different labels" if seen[name] != labels else "twice"
            raise DataError(f"{path}: {name} is listed {how}; keep one row per image.")
        seen[name] = labels
    return rows


def _flag(value: str, path: Path, line: int) -> int:
    v = value.strip().lower()
    if v in TRUE_VALUES:
        return 1
    if v in FALSE_VALUES:
        return 0
    raise DataError(f"{path}, line {line}: {value!r} is not a binary label; use 1/-1, 1/0 or true/false.")


def _image_dir(folder: Path, sample: list[str]) -> Path:
    for cand in (folder / "img_align_celeba", folder / "images", folder):
        if cand.is_dir() and any((cand / f).is_file() for f in sample):
            return cand
    raise DataError(
        f"{folder}: none of the first listed images (e.g. {sample[0] if sample else '?'}) was found in "
        "img_align_celeba/, images/ or the folder itself; check the path."
    )


def _check_labelled(image_dir: Path, labelled: set[str]) -> None:
    present = {p.relative_to(image_dir).as_posix() for p in image_dir.rglob("*")
               if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")}
    unlabelled = sorted(present - labelled)
    if unlabelled:
        raise DataError(
            f"{image_dir}: {len(unlabelled)} image(s) have no row in the attribute table (e.g. {unlabelled[0]}); "
            "add their labels or move them out of the folder."
        )
    missing = sorted(labelled - present)
    if missing:
        raise DataError(
            f"{image_dir}: {len(missing)} labelled image(s) are missing (e.g. {missing[0]}); "
            "restore them or remove their rows from the table."
        )


def _decode(image_dir: Path, files: list[str], size: tuple[int, int] | None) -> torch.Tensor:
    out: torch.Tensor | None = None
    for i, name in enumerate(files):
        x = load_image(image_dir / name, min_side=1)
        if size is None:
            size = tuple(x.shape[-2:])
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
        if out is None:
            out = torch.empty(len(files), 3, *size, dtype=torch.uint8)
        out[i] = x.clamp(0, 1).mul(255).round().to(torch.uint8)
    return out


def _partition(path: Path, files: list[str]) -> torch.Tensor | None:
    if not path.is_file():
        return None
    split = dict(line.split()[:2] for line in path.read_text().splitlines() if len(line.split()) >= 2)
    if any(f not in split for f in files):
        return None
    return torch.tensor([int(split[f]) for f in files])


def split_indices(data: AttributeData, seed: int = 0, fractions: tuple[float, float] = (0.8, 0.1),
                  by_identity: bool = False) -> dict[str, torch.Tensor]:
    """Fixed train/val/test indices: CelebA's own partition when present, else a seeded shuffle (80/10/10 by
    default; `fractions` are train's and val's). `by_identity`: shuffle people, not images, so that no person is
    in two splits; each split then takes whole people until it holds its fraction of the images.

    >>> d = AttributeData(torch.zeros(10, 3, 4, 4, dtype=torch.uint8), torch.zeros(10, 1), ["a"], list("abcdefghij"))
    >>> [len(v) for v in split_indices(d).values()]
    [8, 1, 1]
    >>> d.identities = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    >>> [len(v) for v in split_indices(d, fractions=(0.6, 0.2), by_identity=True).values()]
    [6, 2, 2]
    """
    if data.partition is not None:
        splits = {name: torch.nonzero(data.partition == k).flatten() for k, name in enumerate(("train", "val", "test"))}
    elif by_identity:
        splits = _split_people(data, seed, fractions)
    else:
        perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
        n_train = int(round(fractions[0] * len(data)))
        n_val = int(round(fractions[1] * len(data)))
        splits = {"train": perm[:n_train], "val": perm[n_train:n_train + n_val], "test": perm[n_train + n_val:]}
    empty = [k for k, v in splits.items() if len(v) == 0]
    if empty:
        raise DataError(f"the {' and '.join(empty)} split is empty ({len(data)} images); use more images.")
    return splits


def _split_people(data: AttributeData, seed: int, fractions: tuple[float, float]) -> dict[str, torch.Tensor]:
    if data.identities is None:
        raise DataError("splitting by identity needs each image's person: put CelebA's identity_CelebA.txt in the "
                        "data folder, or group the faces with advpriv.obfuscate.identity.pseudo_identities.")
    people, of_image = torch.unique(data.identities, return_inverse=True)
    order = torch.randperm(len(people), generator=torch.Generator().manual_seed(seed))
    ends = torch.cumsum(torch.bincount(of_image, minlength=len(people))[order], 0)
    n_train, n_val = round(fractions[0] * len(data)), round((fractions[0] + fractions[1]) * len(data))
    part = torch.empty(len(people), dtype=torch.long)
    part[order] = (ends > n_train).long() + (ends > n_val).long()
    image_part = part[of_image]
    return {name: torch.nonzero(image_part == k).flatten() for k, name in enumerate(("train", "val", "test"))}
