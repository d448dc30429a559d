"""The cloud half of DeepObfuscator: a trained run's cloud classifier C, answering on features sent by a device.

Example:
    >>> cloud = CloudClassifier("runs/celeba")                        # doctest: +SKIP
    >>> cloud.predict(np.zeros((1, *cloud.feature_shape), np.float32))  # doctest: +SKIP
    [{'Smiling': False, 'probability': 0.21}]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from advpriv.obfuscate import load_run


class CloudClassifier:
    """Loads encoder `encoder`'s cloud classifier from a run folder; `predict` takes features (N, C, h, w)."""

    def __init__(self, run_folder: str | Path, encoder: str = "obfuscator") -> None:
        run = load_run(run_folder)
        self.classifier = run.parties(encoder)["C"]
        self.feature_shape = run.feature_shape
        self.attribute, self.encoder = run.config.utility, encoder

    @torch.no_grad()
    def predict(self, features: np.ndarray) -> list[dict]:
        """Per image: the utility attribute's decision (probability ≥ 0.5) and its probability."""
        probabilities = torch.sigmoid(self.classifier(torch.from_numpy(features))).tolist()
        return [{self.attribute: p >= 0.5, "probability": round(p, 6)} for p in probabilities]

    def describe(self) -> dict:
        """What a device needs to know to send features (never the server's path to the run)."""
        return {"encoder": self.encoder, "attribute": self.attribute,
                "feature_shape": list(self.feature_shape), "dtypes": ["float32", "float16"]}
