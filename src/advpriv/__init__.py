"""advpriv: adversarial privacy for images.

Image-level protection (minimum noticeable difference) and feature-level protection (DeepObfuscator).

Example:
    >>> import advpriv, torch
    >>> results = advpriv.protect(torch.rand(1, 3, 64, 64))  # doctest: +SKIP
"""

from .protect import MNDConfig, protect, protect_files

__version__ = "0.1.0"
__all__ = ["MNDConfig", "protect", "protect_files", "__version__"]
