#!/usr/bin/env python3
"""PyTorch peer of `tinygpt bench`: greedy decoding of the GPT/MoE of docs/MODEL.md with a KV cache,
or with --arch llama of the Llama/Mixtral/Qwen2-MoE family of bench/torch_llama.py.

Run it with Debian's Python (which has torch) and OpenBLAS's OpenMP build, from the repo root:

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
        /usr/bin/python3 bench/torch_decode.py --experts 8 --topk 2 [--json]
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
        /usr/bin/python3 bench/torch_decode.py --arch llama --kv-heads 2 --d-mlp 704 \\
        --experts 16 --topk 4 --moe-ffn 176 --moe-shared-ffn 704 --moe-norm-topk off [--json]

The model is bench/torch_train.py's (imported from it, so the two peers cannot drift): float32,
eval mode, torch.inference_mode(), random weights with MODEL.md's N(0, 0.02) init (seeded; speed
does not depend on the values). Batch 1. With --arch llama the model is torch_llama.Llama (HF
Llama/Mixtral/Qwen2-MoE modules, same init) and its decode(): RoPE at the cached positions, the
cache holds the --kv-heads key/value heads ([1, KVH, ctx, hd]) and repeat_kv follows it, as in HF.

KV cache, the standard way: per layer, keys and values of the past positions. `--kv prealloc`
(default; the faster one in torch 1.13 here) keeps them in preallocated [1, H, ctx, hd] tensors,
writes the new positions into a slice and attends over `cache[:, :, :pos+T]`; `--kv cat` grows
them with torch.cat every step (older Hugging Face style).

MoE as the Hugging Face Mixtral "eager" block: router softmax -> top-K -> gates (K=1: the raw
softmax probability; K>=2: renormalised over the K chosen) -> one_hot -> loop over the experts that
got tokens -> torch.where -> gather -> expert MLP -> x gate -> index_add_. For one decode token that
is exactly K expert MLP calls. No load-balance loss at inference.

Workload as `tinygpt bench`: a prompt of --prompt-tokens bytes of "The quick brown fox jumps over
the lazy dog. " repeated, prefilled in one forward (logits of the last position only), then
--gen-tokens tokens generated greedily, one forward per token after the first. --runs timed runs
after --warmup untimed ones. Reported (median over runs): decode tok/s = (tokens after the first) /
(sum of their step times), TTFT ms (prefill + first token), prefill tok/s = prompt / TTFT.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from torch_llama import add_llama_arguments, llama_from_arguments  # noqa: E402
from torch_train import GPT  # noqa: E402  (the same nn.Modules as the training peer)

FILLER = "The quick brown fox jumps over the lazy dog. "


class KVCache:
    """Per-layer keys/values of the positions seen so far."""

    def __init__(self, L, H, ctx, hd, mode):
        self.mode, self.pos = mode, 0
        if mode == "prealloc":
            self.k = [torch.zeros(1, H, ctx, hd) for _ in range(L)]
            self.v = [torch.zeros(1, H, ctx, hd) for _ in range(L)]
        else:
            self.k, self.v = [None] * L, [None] * L

    def reset(self):
        self.pos = 0
        if self.mode == "cat":
            self.k, self.v = [None] * len(self.k), [None] * len(self.v)

    def update(self, layer, k, v):
        """Appends k, v [1, H, T, hd] at self.pos; returns the keys/values of positions [0, pos+T)."""
        if self.mode == "prealloc":
            end = self.pos + k.shape[2]
            self.k[layer][:, :, self.pos:end] = k
            self.v[layer][:, :, self.pos:end] = v
            return self.k[layer][:, :, :end], self.v[layer][:, :, :end]
        if self.k[layer] is None:
            self.k[layer], self.v[layer] = k, v
        else:
            self.k[layer] = torch.cat([self.k[layer], k], dim=2)
            self.v[layer] = torch.cat([self.v[layer], v], dim=2)
        return self.k[layer], self.v[layer]


def attention(attn, a, cache, layer, mask):
    B, T, C = a.shape
    H, hd = attn.H, C // attn.H
    q = attn.q_proj(a).view(B, T, H, hd).transpose(1, 2)
    k = attn.k_proj(a).view(B, T, H, hd).transpose(1, 2)
    v = attn.v_proj(a).view(B, T, H, hd).transpose(1, 2)
    pos = cache.pos
    k, v = cache.update(layer, k, v)
    s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
    if T > 1:  # prefill: causal mask, offset by the cached positions
        s = s.masked_fill(mask[pos:pos + T, :pos + T], float("-inf"))
    att = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
    return attn.o_proj(att)


def moe_forward(moe, x):
    """Hugging Face Mixtral sparse MoE block (eager), inference."""
    B, T, C = x.shape
    h = x.view(-1, C)
    router_logits = moe.router(h)  # [N, E]
    probs = F.softmax(router_logits, dim=1, dtype=torch.float)
    routing_weights, selected = torch.topk(probs, moe.K, dim=-1)  # [N, K]
    if moe.K >= 2:
        routing_weights = routing_weights / routing_weights.sum(dim=-1, keepdim=True)
    routing_weights = routing_weights.to(h.dtype)
    out = torch.zeros((B * T, C), dtype=h.dtype)
    expert_mask = F.one_hot(selected, num_classes=moe.E).permute(2, 1, 0)  # [E, K, N]
    expert_hit = torch.greater(expert_mask.sum(dim=(-1, -2)), 0).nonzero()
    for e in expert_hit.flatten().tolist():
        slot, top_x = torch.where(expert_mask[e])
        cur = h[top_x]
        y = moe.experts[e](cur) * routing_weights[top_x, slot, None]
        out.index_add_(0, top_x, y.to(h.dtype))
    return out.view(B, T, C)


def forward(model, idx, cache):
    """Runs idx [1, T] at positions cache.pos.. and returns the logits of the last one [V]."""
    T = idx.shape[1]
    pos = cache.pos
    x = model.token_embedding(idx) + model.position_embedding.weight[pos:pos + T]
    for layer, blk in enumerate(model.blocks):
        x = x + attention(blk.attn, blk.ln1(x), cache, layer, model.mask)
        m = blk.ln2(x)
        x = x + (moe_forward(blk.moe, m) if blk.moe is not None else blk.mlp(m))
    cache.pos = pos + T
    last = model.ln_final(x[:, -1])
    return F.linear(last, model.token_embedding.weight)[0]  # tied head


def generate(step, cache, prompt, gen_tokens):
    """Greedy with step(idx, cache) -> last logits; returns (ttft seconds, per-step seconds of the
    tokens after the first, tokens)."""
    cache.reset()
    t0 = time.perf_counter()
    token = int(torch.argmax(step(prompt, cache)).item())
    ttft = time.perf_counter() - t0
    steps, out = [], [token]
    for _ in range(gen_tokens - 1):
        t = time.perf_counter()
        token = int(torch.argmax(step(torch.tensor([[token]]), cache)).item())
        steps.append(time.perf_counter() - t)
        out.append(token)
    return ttft, steps, out


def percentile(v, p):
    if not v:
        return 0.0
    v = sorted(v)
    pos = p / 100.0 * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def main():
    ap = argparse.ArgumentParser(
        description="PyTorch (float32, CPU) inference peer of `tinygpt bench`. Run as: "
                    "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp "
                    "/usr/bin/python3 bench/torch_decode.py [flags]")
    ap.add_argument("--arch", choices=["gpt", "llama"], default="gpt",
                    help="gpt (docs/MODEL.md) or llama (bench/torch_llama.py)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--d-mlp", type=int, default=1024)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--experts", type=int, default=1, help="1 = dense MLP")
    ap.add_argument("--topk", type=int, default=1, help="clamped to --experts")
    add_llama_arguments(ap)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=5, help="timed runs")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kv", choices=["prealloc", "cat"], default="prealloc",
                    help="KV cache: preallocated [1,H,ctx,hd] per layer, or torch.cat per step")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--json", action="store_true", help="print exactly one JSON object line")
    args = ap.parse_args()

    cfg = dict(layers=args.layers, d_model=args.d_model, heads=args.heads, d_mlp=args.d_mlp,
               ctx=args.ctx, experts=args.experts, topk=min(args.topk, args.experts))
    if cfg["d_model"] % cfg["heads"]:
        sys.exit("d-model must be divisible by heads")
    cfg["arch"] = args.arch
    if args.prompt_tokens < 1 or args.gen_tokens < 1 or args.runs < 1 or args.warmup < 0:
        sys.exit("--prompt-tokens, --gen-tokens, --runs must be >= 1 and --warmup >= 0")
    if args.prompt_tokens + args.gen_tokens - 1 > cfg["ctx"]:
        sys.exit(f"--prompt-tokens + --gen-tokens - 1 = {args.prompt_tokens + args.gen_tokens - 1} "
                 f"exceeds the context of {cfg['ctx']}")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    V = 256
    if args.arch == "llama":
        model = llama_from_arguments(V, cfg, args)
        step, cache_heads = model.decode, cfg["kv_heads"]
    else:
        model = GPT(V, cfg["ctx"], cfg["layers"], cfg["d_model"], cfg["heads"], cfg["d_mlp"],
                    cfg["experts"], cfg["topk"])
        step, cache_heads = (lambda idx, cache: forward(model, idx, cache)), cfg["heads"]
    model.eval()
    params_total = sum(p.numel() for p in model.parameters())
    hd = cfg["d_model"] // cfg["heads"]
    cache = KVCache(cfg["layers"], cache_heads, cfg["ctx"], hd, args.kv)
    text = (FILLER * (args.prompt_tokens // len(FILLER) + 1))[:args.prompt_tokens]
    prompt = torch.tensor([list(text.encode())], dtype=torch.long)

    ttft, prefill, decode, itl = [], [], [], []
    with torch.inference_mode():
        for r in range(args.warmup + args.runs):
            t_first, steps, _ = generate(step, cache, prompt, args.gen_tokens)
            if r < args.warmup:
                continue
            ttft.append(t_first * 1e3)
            prefill.append(args.prompt_tokens / t_first)
            decode.append(len(steps) / sum(steps) if steps else 0.0)
            itl.extend(s * 1e3 for s in steps[1:])  # first inter-token latency dropped, as tinygpt

    med = statistics.median
    out_cfg = dict(cfg, vocab=V, prompt_tokens=args.prompt_tokens, gen_tokens=args.gen_tokens,
                   runs=args.runs, warmup=args.warmup, threads=args.threads, kv_cache=args.kv,
                   torch=torch.__version__)
    if args.json:
        print(json.dumps(dict(decode_tok_per_s=med(decode), prefill_tok_per_s=med(prefill),
                              ttft_ms=med(ttft), itl_ms_p50=percentile(itl, 50),
                              itl_ms_p95=percentile(itl, 95), itl_ms_p99=percentile(itl, 99),
                              params_total=params_total, config=out_cfg)))
    else:
        print("config: " + " ".join(f"{k}={v}" for k, v in out_cfg.items()))
        print(f"params_total: {params_total}")
        print(f"TTFT: {med(ttft):.2f} ms (median)")
        print(f"prefill: {med(prefill):.0f} tok/s")
        print(f"decode: {med(decode):.0f} tok/s  (min {min(decode):.0f}, max {max(decode):.0f}, "
              f"{len(decode)} runs)")
        print(f"ITL: p50 {percentile(itl, 50):.3f} ms, p95 {percentile(itl, 95):.3f} ms, "
              f"p99 {percentile(itl, 99):.3f} ms")


if __name__ == "__main__":
    main()
