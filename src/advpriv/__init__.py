"""advpriv: adversarial privacy for images.

Image-level protection (minimum noticeable difference) and feature-level protection (DeepObfuscator).
"""

__version__ = "0.1.0"
