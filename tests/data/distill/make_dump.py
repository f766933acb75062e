#!/usr/bin/env python3
"""PyTorch reference for distillation's loss (src/train/distillation.h), read by
tests/test_distillation.cpp (DistillTorchParity).

For fixed random student and teacher logits and targets it writes, per case (alpha, tau, top-K),
the mean loss, its KL and cross-entropy terms and the gradient of the mean loss with respect to
the student's logits, computed by autograd in float64:

    loss = alpha * tau^2 * KL(softmax(t/tau) || softmax(z/tau)) + (1 - alpha) * CE(z, y)

With top-K > 0 the teacher keeps its K most likely tokens at tau; the rest of its mass and the
student's mass on the same tokens form one more bucket each.

Run: /usr/bin/python3 tests/data/distill/make_dump.py > tests/data/distill/torch_ref.json
"""
import json
import sys

import torch

ROWS, VOCAB = 5, 17
CASES = [(1.0, 1.0, 0), (0.5, 2.0, 0), (0.2, 0.7, 0), (0.9, 4.0, 0), (1.0, 1.0, 4), (0.5, 2.0, 6),
         (0.0, 3.0, 0)]


def kl_term(z, t, tau, k):
    ls = torch.log_softmax(z / tau, dim=-1)
    lt = torch.log_softmax(t / tau, dim=-1)
    if k == 0:
        return (lt.exp() * (lt - ls)).sum(-1)
    kept = torch.topk(lt, k, dim=-1).indices
    mask = torch.zeros_like(lt, dtype=torch.bool).scatter_(-1, kept, True)
    kl = torch.where(mask, lt.exp() * (lt - ls), torch.zeros_like(ls)).sum(-1)
    neg_inf = torch.full_like(ls, float("-inf"))
    teacher_rest = torch.logsumexp(torch.where(mask, neg_inf, lt), dim=-1)
    student_rest = torch.logsumexp(torch.where(mask, neg_inf, ls), dim=-1)
    return kl + teacher_rest.exp() * (teacher_rest - student_rest)


def main():
    torch.manual_seed(20261201)
    z32 = (torch.randn(ROWS, VOCAB) * 2.0).float()
    t32 = (torch.randn(ROWS, VOCAB) * 3.0).float()
    y = torch.randint(0, VOCAB, (ROWS,))
    cases = []
    for alpha, tau, k in CASES:
        z = z32.double().requires_grad_(True)
        t = t32.double()
        kl = kl_term(z, t, tau, k).mean()
        ce = torch.nn.functional.cross_entropy(z, y)
        loss = alpha * tau * tau * kl + (1 - alpha) * ce
        loss.backward()
        cases.append({"alpha": alpha, "temperature": tau, "topk": k, "loss": loss.item(),
                      "kl": kl.item(), "cross_entropy": ce.item(),
                      "d_logits": z.grad.flatten().tolist()})
    json.dump({"rows": ROWS, "vocab": VOCAB, "student_logits": z32.flatten().tolist(),
               "teacher_logits": t32.flatten().tolist(), "targets": y.tolist(), "cases": cases},
              sys.stdout, indent=None)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
