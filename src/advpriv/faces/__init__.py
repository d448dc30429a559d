"""Face recognition: dlib ResNet port, detection, differentiable alignment, objectives and judges."""
