"""Benchmark: pseudo-identities for ../shared/data/celeba-attr (it has no identity file), checked on the images
whose person ../shared/data/celeba-id knows.

Describes every face with dlib's ResNet (kept in WORK/descriptors.pt), groups them at each threshold, checks the
grouping on the celeba-attr images that celeba-id also holds (its folders are CelebA identities, its files CelebA
image numbers): pairs of one person's photos kept together, and, for 60/10/30 splits at seeds 0-2, how many of
those test images have their person in the training split (by image and by pseudo-identity). Writes
RESULTS/pseudo_identities.txt at the chosen threshold (CelebA's identity-file format) and
RESULTS/pseudo_identities.md.

    OMP_NUM_THREADS=1 .venv/bin/python bench/obfuscator_identities.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from advpriv.obfuscate import load_attributes
from advpriv.obfuscate.data import split_indices
from advpriv.obfuscate.identity import (
    GROUP_THRESHOLD, face_descriptors, group_descriptors, grouping_check, write_identities,
)

FRACTIONS = (0.6, 0.1)
SEEDS = (0, 1, 2)


def seen_in_training(data, idx: torch.Tensor, truth: torch.Tensor, by_identity: bool) -> float:
    """Share of the known images (`idx`, people `truth`) in the test split whose person has a training image,
    averaged over SEEDS."""
    person = dict(zip(idx.tolist(), truth.tolist()))
    shares = []
    for seed in SEEDS:
        splits = split_indices(data, seed, FRACTIONS, by_identity=by_identity)
        train = {person[i] for i in splits["train"].tolist() if i in person}
        test = [person[i] for i in splits["test"].tolist() if i in person]
        shares.append(sum(p in train for p in test) / max(1, len(test)))
    return sum(shares) / len(shares)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def known_people(folder: Path, files: list[str]) -> dict[int, int]:
    """Index in `files` → CelebA identity, for the images of `folder` (one sub-folder per identity) among `files`."""
    where = {f: i for i, f in enumerate(files)}
    return {where[p.name]: int(p.parent.name) for p in folder.glob("*/*.jpg") if p.name in where}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.6, 0.65, 0.7, 0.75])
    p.add_argument("--choose", type=float, default=GROUP_THRESHOLD)
    p.add_argument("--work", type=Path, default=ROOT / "out" / "obfuscator-hard")
    p.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "obfuscator-hard")
    a = p.parse_args()
    torch.set_num_threads(1)
    data = load_attributes(SHARED / "celeba-attr")
    cache = a.work / "descriptors.pt"
    t = time.time()
    if cache.is_file():
        descriptors = torch.load(cache, weights_only=True)
    else:
        descriptors = face_descriptors(data)
        a.work.mkdir(parents=True, exist_ok=True)
        torch.save(descriptors, cache)
    describe_s = time.time() - t
    known = known_people(SHARED / "celeba-id", data.files)
    idx = torch.tensor(sorted(known))
    truth = torch.tensor([known[int(i)] for i in idx])
    rows = []
    for threshold in a.thresholds:
        groups = group_descriptors(descriptors, threshold)
        sizes = torch.bincount(groups)
        data.identities = groups
        rows.append({"threshold": threshold, "groups": len(sizes), "largest_group": int(sizes.max()),
                     "singletons": int((sizes == 1).sum()), **grouping_check(groups[idx], truth),
                     "test_person_in_train": seen_in_training(data, idx, truth, True)})
        if threshold == a.choose:
            write_identities(a.results / "pseudo_identities.txt", data.files, groups)
    by_image = seen_in_training(data, idx, truth, False)
    print(json.dumps(rows, indent=1), by_image)
    lines = ["| average-linkage threshold | groups | largest group (images) | single-image groups | same-person "
             "pairs split (of the known) | different-people pairs merged | people wholly in one group | known test "
             "images whose person is in train |", "|" + "---|" * 8]
    lines += [f"| {r['threshold']} | {r['groups']:,} | {r['largest_group']:,} | {r['singletons']:,} | "
              f"{r['same_person_split']:.3f} (of {r['same_person_pairs']}) | {r['different_people_merged']:.4f} | "
              f"{r['people_in_one_group']:.2f} | {r['test_person_in_train']:.3f} |" for r in rows]
    lines.append(f"| split by image (no grouping) | | | | | | | {by_image:.3f} |")
    head = (f"Pseudo-identities of the {len(data):,} celeba-attr faces; checked on the {len(idx)} of them whose person "
            f"celeba-id knows ({rows[0]['people']} people). Describing took {describe_s / 60:.1f} min on one thread "
            f"(0 when cached). Chosen threshold: {a.choose}. Last column: 60/10/30 splits, mean of seeds 0-2.\n\n")
    (a.results / "pseudo_identities.md").write_text(head + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
