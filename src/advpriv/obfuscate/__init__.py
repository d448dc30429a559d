"""DeepObfuscator (Li et al., IoTDI 2021): an adversarially trained on-device feature encoder.

The flow: `load_attributes` → `train` (utility, decoder, attribute pretraining, then the adversarial rotation)
→ `evaluate_run` (fresh attackers against the frozen encoders) → `export_onnx` / `device_report`.

Example:
    >>> from advpriv.obfuscate import TrainConfig, load_attributes, train, load_run, evaluate_run  # doctest: +SKIP
    >>> data = load_attributes("../shared/data/celeba-attr", image_size=(64, 52))               # doctest: +SKIP
    >>> run = load_run(train(data, TrainConfig(width=0.25, fc=256), "runs/small"))              # doctest: +SKIP
    >>> reports, _ = evaluate_run(run, data)                                                     # doctest: +SKIP
"""

from advpriv.obfuscate.baselines import NoisyEncoder, calibrate_noise
from advpriv.obfuscate.checkpoint import Run, load_run
from advpriv.obfuscate.config import TrainConfig
from advpriv.obfuscate.data import AttributeData, DataError, load_attributes, split_indices
from advpriv.obfuscate.evaluate import AttackConfig, EncoderReport, evaluate_run
from advpriv.obfuscate.export import check_onnx, device_report, export_executorch, export_onnx
from advpriv.obfuscate.networks import Classifier, Decoder, Encoder, SplitPoint, Widths
from advpriv.obfuscate.nopeek import distance_correlation, train_nopeek
from advpriv.obfuscate.train import train

__all__ = [
    "AttackConfig", "AttributeData", "Classifier", "DataError", "Decoder", "Encoder", "EncoderReport",
    "NoisyEncoder", "Run", "SplitPoint", "TrainConfig", "Widths", "calibrate_noise", "check_onnx", "device_report",
    "distance_correlation", "evaluate_run", "export_executorch", "export_onnx", "load_attributes", "load_run",
    "split_indices", "train",
    "train_nopeek",
]
