"""Adam on one tensor, through the kernel `torch.optim.Adam(fused=True)` runs, without the optimiser class.

The class's first construction in a process imports `torch._dynamo`: about 1.2 s of every command's start
(`advpriv protect`, `make demo`, each service worker and Ray actor). The kernel alone imports nothing, and its
steps are bit for bit those of `torch.optim.Adam([param], lr, fused=True)` (tests/test_protect.py checks).

Example:
    >>> import torch
    >>> x = torch.zeros(3, requires_grad=True)
    >>> adam = FusedAdam(x, lr=0.1)
    >>> (x - torch.tensor([1.0, -1.0, 0.0])).square().sum().backward()
    >>> adam.step(); adam.zero_grad()
    >>> x.detach(), x.grad
    (tensor([ 0.1000, -0.1000,  0.0000]), None)
"""

from __future__ import annotations

import torch


class FusedAdam:
    """Adam (β = 0.9, 0.999; ε = 1e-8; no weight decay) on `param`, reading `param.grad` at each `step`."""

    def __init__(self, param: torch.Tensor, lr: float) -> None:
        self.param, self.lr = param, lr
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(param), torch.zeros_like(param)
        self.steps = torch.zeros((), dtype=torch.float32)

    def step(self) -> None:
        if self.param.grad is None:
            return
        self.steps += 1
        with torch.no_grad():
            torch._fused_adam_([self.param], [self.param.grad], [self.exp_avg], [self.exp_avg_sq], [], [self.steps],
                               lr=self.lr, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8, amsgrad=False,
                               maximize=False)

    def zero_grad(self) -> None:
        self.param.grad = None
