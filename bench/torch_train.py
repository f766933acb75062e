#!/usr/bin/env python3
"""PyTorch peer of tinygpt's training benchmark: the GPT/MoE of docs/MODEL.md in float32 on the CPU,
or with --arch llama the Llama/Mixtral/Qwen2-MoE family of bench/torch_llama.py.

Run it with Debian's Python (which has torch) and OpenBLAS's OpenMP build, from the repo root:

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
        /usr/bin/python3 bench/torch_train.py --preset tiny --experts 4 --topk 2 --steps 5 --warmup 2
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
        /usr/bin/python3 bench/torch_train.py --arch llama --kv-heads 2 --experts 16 --topk 4 \\
        --moe-ffn 176 --moe-shared-ffn 704 --moe-norm-topk off --steps 5 --warmup 2

MoE dispatch follows the Hugging Face Mixtral "eager" block: router softmax -> top-K -> gates
(K=1: the raw softmax probability, Switch-style; K>=2: renormalised over the K chosen), one_hot of
the selected experts, a loop over the experts that got tokens, torch.where(mask) -> gather rows ->
expert MLP -> x gate -> index_add_. Load-balance loss as in MODEL.md. AdamW (0.9, 0.95), weight
decay 0.1 on 2-D tensors only, global-norm clipping 1.0, constant lr 3e-4. --arch llama takes
tinygpt's flags for the family (--kv-heads, --moe-ffn, --moe-shared-ffn, --moe-norm-topk,
--rope-theta, --norm-eps); its MoE is the same loop (Mixtral / Qwen2-MoE blocks, torch_llama.py).

Timed: the whole optimizer step (batch sampling, forward, backward, clip, AdamW). Prints the
median ms/step, tok/s (= batch*ctx / median step time), the parameter count and the last loss;
--json prints exactly one JSON object line instead.
"""

import argparse
import inspect
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_llama import add_llama_arguments, llama_from_arguments  # noqa: E402

PRESETS = {
    "tiny": dict(layers=4, d_model=128, heads=4, ctx=128, d_mlp=512, batch=16),
}


class MLP(nn.Module):
    def __init__(self, C, M):
        super().__init__()
        self.fc_in = nn.Linear(C, M)
        self.fc_out = nn.Linear(M, C)

    def forward(self, x):
        return self.fc_out(F.gelu(self.fc_in(x)))  # exact (erf) GELU


class MoE(nn.Module):
    """Mixtral-eager-style sparse MoE over the flattened tokens."""

    def __init__(self, C, M, E, K):
        super().__init__()
        self.E, self.K = E, min(K, E)
        self.router = nn.Linear(C, E, bias=False)
        self.experts = nn.ModuleList([MLP(C, M) for _ in range(E)])

    def forward(self, x):
        B, T, C = x.shape
        h = x.reshape(-1, C)
        N = h.shape[0]
        router_logits = self.router(h)  # [N, E]
        probs = F.softmax(router_logits, dim=1, dtype=torch.float)
        routing_weights, selected = torch.topk(probs, self.K, dim=-1)  # [N, K]
        if self.K >= 2:
            routing_weights = routing_weights / routing_weights.sum(dim=-1, keepdim=True)
        routing_weights = routing_weights.to(h.dtype)
        out = torch.zeros((N, C), dtype=h.dtype, device=h.device)
        expert_mask = F.one_hot(selected, num_classes=self.E).permute(2, 1, 0)  # [E, K, N]
        counts = expert_mask.sum(dim=(1, 2))  # (token, slot) pairs per expert
        for e in torch.nonzero(counts > 0).flatten().tolist():
            slot, top_x = torch.where(expert_mask[e])
            cur = h[top_x]
            y = self.experts[e](cur) * routing_weights[top_x, slot, None]
            out.index_add_(0, top_x, y.to(h.dtype))
        # Load-balance loss (MODEL.md): E * sum_e f_e * P_e, f_e constant.
        f = counts.to(probs.dtype).detach() / (N * self.K)
        P = probs.mean(dim=0)
        aux = self.E * (f * P).sum()
        return out.view(B, T, C), aux


class Attention(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.q_proj, self.k_proj = nn.Linear(C, C), nn.Linear(C, C)
        self.v_proj, self.o_proj = nn.Linear(C, C), nn.Linear(C, C)

    def forward(self, a, mask):
        B, T, C = a.shape
        H, hd = self.H, C // self.H
        q = self.q_proj(a).view(B, T, H, hd).transpose(1, 2)
        k = self.k_proj(a).view(B, T, H, hd).transpose(1, 2)
        v = self.v_proj(a).view(B, T, H, hd).transpose(1, 2)
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        s = s.masked_fill(mask[:T, :T], float("-inf"))
        att = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
        return self.o_proj(att)


class Block(nn.Module):
    def __init__(self, C, H, M, E, K):
        super().__init__()
        self.ln1 = nn.LayerNorm(C, eps=1e-5)
        self.attn = Attention(C, H)
        self.ln2 = nn.LayerNorm(C, eps=1e-5)
        self.moe = MoE(C, M, E, K) if E > 1 else None
        self.mlp = MLP(C, M) if E == 1 else None

    def forward(self, x, mask):
        x = x + self.attn(self.ln1(x), mask)
        m = self.ln2(x)
        if self.moe is not None:
            y, aux = self.moe(m)
        else:
            y, aux = self.mlp(m), None
        return x + y, aux


class GPT(nn.Module):
    def __init__(self, V, ctx, L, C, H, M, E, K):
        super().__init__()
        self.token_embedding = nn.Embedding(V, C)
        self.position_embedding = nn.Embedding(ctx, C)
        self.blocks = nn.ModuleList([Block(C, H, M, E, K) for _ in range(L)])
        self.ln_final = nn.LayerNorm(C, eps=1e-5)
        self.register_buffer("mask", torch.ones(ctx, ctx, dtype=torch.bool).triu(1),
                             persistent=False)
        # GPT-2 style init (MODEL.md).
        resid = 0.02 / math.sqrt(2 * L)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = resid if name.endswith(("o_proj.weight", "fc_out.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            else:
                nn.init.ones_(p)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.token_embedding(idx) + self.position_embedding.weight[:T]
        aux_total = None
        for blk in self.blocks:
            x, aux = blk(x, self.mask)
            if aux is not None:
                aux_total = aux if aux_total is None else aux_total + aux
        logits = F.linear(self.ln_final(x), self.token_embedding.weight)  # tied head
        ce = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T))
        return ce, aux_total


def main():
    ap = argparse.ArgumentParser(
        description="PyTorch (float32, CPU) training-throughput peer for tinygpt. Run as: "
                    "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp "
                    "/usr/bin/python3 bench/torch_train.py --preset tiny [flags]")
    ap.add_argument("--arch", choices=["gpt", "llama"], default="gpt",
                    help="gpt (docs/MODEL.md) or llama (bench/torch_llama.py)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny",
                    help="tiny = L4 C128 H4 ctx128 M512 batch16 (explicit flags override)")
    ap.add_argument("--layers", type=int)
    ap.add_argument("--d-model", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--d-mlp", type=int)
    ap.add_argument("--ctx", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--experts", type=int, default=1, help="1 = dense MLP")
    ap.add_argument("--topk", type=int, default=1, help="clamped to --experts")
    add_llama_arguments(ap)
    ap.add_argument("--aux-weight", type=float, default=0.01)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before the timed ones")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    default_corpus = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                  "data", "shakespeare.txt")
    ap.add_argument("--corpus", default=default_corpus)
    ap.add_argument("--json", action="store_true", help="print exactly one JSON object line")
    ap.add_argument("--verbose", action="store_true", help="per-step times on stderr")
    args = ap.parse_args()

    cfg = dict(PRESETS[args.preset])
    for k in ("layers", "d_model", "heads", "d_mlp", "ctx", "batch"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    cfg["experts"] = args.experts
    cfg["topk"] = min(args.topk, args.experts)
    if cfg["d_model"] % cfg["heads"]:
        sys.exit("d-model must be divisible by heads")
    cfg["arch"] = args.arch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    V, T, B = 256, cfg["ctx"], cfg["batch"]
    if args.arch == "llama":
        model = llama_from_arguments(V, cfg, args)
    else:
        model = GPT(V, T, cfg["layers"], cfg["d_model"], cfg["heads"], cfg["d_mlp"],
                    cfg["experts"], cfg["topk"])
    model.train()
    params_total = sum(p.numel() for p in model.parameters())

    with open(args.corpus, "rb") as f:
        data = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
    if data.numel() < T + 2:
        sys.exit("corpus too small")
    offs = torch.arange(T + 1)

    def get_batch():
        starts = torch.randint(0, data.numel() - T - 1, (B, 1))
        win = data[starts + offs].long()
        return win[:, :-1], win[:, 1:]

    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() != 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    kw = dict(lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    foreach = "foreach" in inspect.signature(torch.optim.AdamW).parameters
    if foreach:
        kw["foreach"] = True
    opt = torch.optim.AdamW(groups, **kw)
    params = list(model.parameters())

    times, loss_v, ce_v, aux_v = [], float("nan"), float("nan"), float("nan")
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        x, y = get_batch()
        ce, aux = model(x, y)
        loss = ce if aux is None else ce + args.aux_weight * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        loss_v = loss.item()
        dt = time.perf_counter() - t0
        ce_v, aux_v = ce.item(), (0.0 if aux is None else aux.item())
        if step >= args.warmup:
            times.append(dt)
        if args.verbose:
            print(f"step {step}{' (warmup)' if step < args.warmup else ''}: {dt * 1e3:.1f} ms "
                  f"loss {loss_v:.4f}", file=sys.stderr, flush=True)

    med = statistics.median(times) if times else float("nan")
    tok_s = B * T / med if times else float("nan")
    out_cfg = dict(cfg, vocab=V, aux_weight=args.aux_weight, lr=args.lr, steps=args.steps,
                   warmup=args.warmup, threads=args.threads, torch=torch.__version__,
                   adamw_foreach=foreach)
    if args.json:
        print(json.dumps(dict(ms_per_step_median=med * 1e3, tok_per_s=tok_s,
                              params_total=params_total, loss=loss_v, config=out_cfg)))
    else:
        print("config: " + " ".join(f"{k}={v}" for k, v in out_cfg.items()))
        print(f"params_total: {params_total}")
        print(f"median ms/step: {med * 1e3:.2f}  (min {min(times) * 1e3:.2f}, "
              f"max {max(times) * 1e3:.2f}, {len(times)} timed steps)" if times else
              "median ms/step: n/a")
        print(f"tok/s: {tok_s:.0f}")
        print(f"last loss: {loss_v:.4f} (ce {ce_v:.4f}, aux {aux_v:.4f})")


if __name__ == "__main__":
    main()
