"""The cloud half of DeepObfuscator: a trained run's cloud classifier C, answering on features sent by a device.

Example:
    >>> cloud = CloudClassifier("runs/celeba")                        # doctest: +SKIP
    >>> cloud.predict(np.zeros((1, *cloud.feature_shape), np.float32))  # doctest: +SKIP
    [{'Smiling': False, 'probability': 0.21}]

A run trained on several cloud tasks (`--utility Smiling,Heavy_Makeup`) answers each, with a probability per task:
`[{'Smiling': False, 'Heavy_Makeup': True, 'probabilities': {'Smiling': 0.21, 'Heavy_Makeup': 0.83}}]`.
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
        self.tasks = run.config.utility_tasks

    @torch.no_grad()
    def predict(self, features: np.ndarray) -> list[dict]:
        """Per image: each utility task's decision (probability ≥ 0.5) and its probability ("probability" for one
        task, "probabilities" by task for several)."""
        logits = self.classifier(torch.from_numpy(features))
        probabilities = torch.sigmoid(logits).reshape(len(features), len(self.tasks)).tolist()
        if len(self.tasks) == 1:
            return [{self.tasks[0]: p >= 0.5, "probability": round(p, 6)} for (p,) in probabilities]
        return [{**{task: p >= 0.5 for task, p in zip(self.tasks, row)},
                 "probabilities": {task: round(p, 6) for task, p in zip(self.tasks, row)}} for row in probabilities]

    def describe(self) -> dict:
        """What a device needs to know to send features (never the server's path to the run)."""
        return {"encoder": self.encoder, "attribute": self.attribute,
                "feature_shape": list(self.feature_shape), "dtypes": ["float32", "float16"]}
