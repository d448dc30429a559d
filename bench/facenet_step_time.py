"""Seconds per MND step on one face photo, attacking dlib alone and dlib + FaceNet, alternating runs.

Every run takes exactly `--steps` steps (settling disabled), so the time per step compares like with like.

    OMP_NUM_THREADS=1 .venv/bin/python bench/facenet_step_time.py --photo ../shared/data/faces-wild/images/000989.jpg
"""

from __future__ import annotations

import argparse

import torch

from advpriv.faces.embedders import dlib_embedder
from advpriv.faces.facenet import load_facenet
from advpriv.images import load_image
from advpriv.protect.face_protect import protect_faces
from advpriv.protect.mnd import MNDConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    image = load_image(args.photo)
    ensembles = {"dlib": [dlib_embedder()], "dlib + facenet": [dlib_embedder(), load_facenet()]}
    config = MNDConfig(steps=args.steps, stop_tol=-1.0)
    protect_faces(image, embedders=ensembles["dlib + facenet"], config=MNDConfig(steps=1))  # warm-up
    for run in range(args.runs):
        for name, embedders in ensembles.items():
            result = protect_faces(image, embedders=embedders, config=config)
            print(f"run {run + 1}, {name}: {result.seconds / args.steps:.3f} s per step "
                  f"({result.seconds:.1f} s for {args.steps} steps)")


if __name__ == "__main__":
    main()
