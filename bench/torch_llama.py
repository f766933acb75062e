"""The Llama family (`tinygpt --arch llama`) in PyTorch, Hugging Face "eager" style, for the peers.

bench/torch_train.py and bench/torch_decode.py use it with `--arch llama`. Written from the modeling
code of Hugging Face transformers (Llama, Mixtral, Qwen2-MoE), module for module, float32, no
torch.compile, no fused or scaled_dot_product attention:

  * LlamaRMSNorm: x · rsqrt(mean(x²) + eps) · w.
  * LlamaRotaryEmbedding (rotate-half): cos/sin of positions · inv_freq, computed once per forward
    and shared by the layers, q·cos + rotate_half(q)·sin.
  * Attention with GQA: q [B, H, T, hd], k/v [B, KVH, T, hd] (the KV cache holds the KVH heads),
    repeat_kv, (q @ kᵀ)·1/√hd, causal mask, softmax, @ v, o_proj. No biases.
  * SwiGLU MLP: down(silu(gate(x)) · up(x)), no biases.
  * MoE as MixtralSparseMoeBlock / Qwen2MoeSparseMoeBlock: router logits = gate(x), softmax, top-K,
    renormalised over the K iff norm_topk, one_hot, a loop over the experts that got tokens
    (torch.where -> gather rows -> expert MLP -> x weight -> index_add_); the Qwen2-MoE shared
    expert adds sigmoid(shared_expert_gate(x)) · shared_expert(x).
  * Final RMSNorm, untied lm_head.

Every layer is MoE when experts > 1 (tinygpt's --moe-every 1 --moe-dense-first 0). Training adds
tinygpt's load-balance loss per MoE layer (E · Σ_e f_e · P_e, f_e = pairs routed to e / (N·K), no
gradient through f), like the GPT peer; inference skips it. Init as tinygpt's: N(0, 0.02),
o_proj/down_proj N(0, 0.02/√(2L)), norms 1 (the values do not matter for speed, the routing
balance of a random router does a little and is the same on both sides).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, C, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(C))
        self.eps = eps

    def forward(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


class RotaryEmbedding(nn.Module):
    def __init__(self, hd, theta):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float) / hd))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, start, T):
        """cos, sin [T, hd] of positions start .. start+T-1."""
        pos = torch.arange(start, start + T, dtype=self.inv_freq.dtype)
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):
    """[B, KVH, T, hd] -> [B, KVH·n_rep, T, hd] (kv head j serves query heads j·n_rep ...)."""
    if n_rep == 1:
        return x
    B, KVH, T, hd = x.shape
    return x[:, :, None, :, :].expand(B, KVH, n_rep, T, hd).reshape(B, KVH * n_rep, T, hd)


class Attention(nn.Module):
    def __init__(self, C, H, KVH):
        super().__init__()
        self.H, self.KVH, self.hd = H, KVH, C // H
        self.q_proj = nn.Linear(C, H * self.hd, bias=False)
        self.k_proj = nn.Linear(C, KVH * self.hd, bias=False)
        self.v_proj = nn.Linear(C, KVH * self.hd, bias=False)
        self.o_proj = nn.Linear(H * self.hd, C, bias=False)

    def forward(self, x, cos, sin, mask, cache=None, layer=0):
        """x [B, T, C] at positions p0 .. p0+T-1; mask [T, p0+T] (True = masked) or None;
        cache: an object with update(layer, k, v) -> keys/values of positions [0, p0+T)."""
        B, T, C = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.KVH, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.KVH, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            k, v = cache.update(layer, k, v)
        k, v = repeat_kv(k, self.H // self.KVH), repeat_kv(v, self.H // self.KVH)
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hd))
        if mask is not None:
            s = s.masked_fill(mask, float("-inf"))
        att = (torch.softmax(s, dim=-1, dtype=torch.float32).to(q.dtype) @ v).transpose(1, 2).reshape(B, T, C)
        return self.o_proj(att)


class MLP(nn.Module):
    def __init__(self, C, M):
        super().__init__()
        self.gate_proj = nn.Linear(C, M, bias=False)
        self.up_proj = nn.Linear(C, M, bias=False)
        self.down_proj = nn.Linear(M, C, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class SparseMoeBlock(nn.Module):
    """MixtralSparseMoeBlock, with Qwen2MoeSparseMoeBlock's norm_topk_prob and shared expert."""

    def __init__(self, C, X, E, K, norm_topk, shared):
        super().__init__()
        self.E, self.K, self.norm_topk = E, min(K, E), norm_topk
        self.gate = nn.Linear(C, E, bias=False)
        self.experts = nn.ModuleList([MLP(C, X) for _ in range(E)])
        self.shared_expert = MLP(C, shared) if shared > 0 else None
        self.shared_expert_gate = nn.Linear(C, 1, bias=False) if shared > 0 else None

    def forward(self, x):
        """Returns (out [B, T, C], load-balance loss or None outside training)."""
        B, T, C = x.shape
        h = x.view(-1, C)
        N = h.shape[0]
        router_logits = self.gate(h)  # [N, E]
        probs = F.softmax(router_logits, dim=1, dtype=torch.float)
        routing_weights, selected = torch.topk(probs, self.K, dim=-1)  # [N, K]
        if self.norm_topk:
            routing_weights = routing_weights / routing_weights.sum(dim=-1, keepdim=True)
        routing_weights = routing_weights.to(h.dtype)
        out = torch.zeros((N, C), dtype=h.dtype, device=h.device)
        expert_mask = F.one_hot(selected, num_classes=self.E).permute(2, 1, 0)  # [E, K, N]
        counts = expert_mask.sum(dim=(1, 2))  # (token, slot) pairs per expert
        for e in torch.nonzero(counts > 0).flatten().tolist():
            slot, top_x = torch.where(expert_mask[e])
            y = self.experts[e](h[top_x]) * routing_weights[top_x, slot, None]
            out.index_add_(0, top_x, y.to(h.dtype))
        if self.shared_expert is not None:
            out = out + torch.sigmoid(self.shared_expert_gate(h)) * self.shared_expert(h)
        aux = None
        if self.training:
            f = counts.to(probs.dtype).detach() / (N * self.K)
            aux = self.E * (f * probs.mean(dim=0)).sum()
        return out.view(B, T, C), aux


class DecoderLayer(nn.Module):
    def __init__(self, C, H, KVH, M, E, K, X, norm_topk, shared, eps):
        super().__init__()
        self.input_layernorm = RMSNorm(C, eps)
        self.self_attn = Attention(C, H, KVH)
        self.post_attention_layernorm = RMSNorm(C, eps)
        self.mlp = SparseMoeBlock(C, X, E, K, norm_topk, shared) if E > 1 else MLP(C, M)

    def forward(self, x, cos, sin, mask, cache=None, layer=0):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, layer)
        h = self.post_attention_layernorm(x)
        if isinstance(self.mlp, SparseMoeBlock):
            y, aux = self.mlp(h)
        else:
            y, aux = self.mlp(h), None
        return x + y, aux


class Llama(nn.Module):
    """V vocab, ctx, L layers, C width, H heads, KVH kv heads, M dense MLP width, E experts, K
    top-K, X expert width (0 = M), norm_topk (bool), shared expert width (0 = none)."""

    def __init__(self, V, ctx, L, C, H, KVH, M, E, K, X=0, norm_topk=True, shared=0,
                 theta=10000.0, eps=1e-5):
        super().__init__()
        self.embed_tokens = nn.Embedding(V, C)
        self.layers = nn.ModuleList([DecoderLayer(C, H, KVH, M, E, K, X or M, norm_topk, shared, eps)
                                     for _ in range(L)])
        self.norm = RMSNorm(C, eps)
        self.lm_head = nn.Linear(C, V, bias=False)
        self.rotary_emb = RotaryEmbedding(C // H, theta)
        self.register_buffer("mask", torch.ones(ctx, ctx, dtype=torch.bool).triu(1),
                             persistent=False)
        resid = 0.02 / math.sqrt(2 * L)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = resid if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            else:
                nn.init.ones_(p)

    def forward(self, idx, targets):
        """Training: returns (cross-entropy, Σ of the layers' load-balance losses or None)."""
        B, T = idx.shape
        x = self.embed_tokens(idx)
        cos, sin = self.rotary_emb(0, T)
        aux_total = None
        for layer in self.layers:
            x, aux = layer(x, cos, sin, self.mask[:T, :T])
            if aux is not None:
                aux_total = aux if aux_total is None else aux_total + aux
        logits = self.lm_head(self.norm(x))
        ce = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T))
        return ce, aux_total

    def decode(self, idx, cache):
        """Inference with a KV cache: runs idx [1, T] at positions cache.pos .. and returns the
        logits of the last one [V]."""
        T = idx.shape[1]
        pos = cache.pos
        x = self.embed_tokens(idx)
        cos, sin = self.rotary_emb(pos, T)
        mask = self.mask[pos:pos + T, :pos + T] if T > 1 else None  # prefill: causal, offset
        for i, layer in enumerate(self.layers):
            x, _ = layer(x, cos, sin, mask, cache, i)
        cache.pos = pos + T
        return self.lm_head(self.norm(x[:, -1]))[0]


# --- the command-line flags the peers share (tinygpt's names) -----------------------------------

def add_llama_arguments(ap):
    ap.add_argument("--kv-heads", type=int, help="llama: key/value heads (default: --heads)")
    ap.add_argument("--moe-ffn", type=int, default=0, help="llama: expert width (0 = --d-mlp)")
    ap.add_argument("--moe-shared-ffn", type=int, default=0, help="llama: shared expert width (0 = none)")
    ap.add_argument("--moe-norm-topk", choices=["on", "off", "auto"], default="auto",
                    help="llama: renormalise the top-K gates (auto = on for K >= 2)")
    ap.add_argument("--rope-theta", type=float, default=10000.0, help="llama: RoPE base")
    ap.add_argument("--norm-eps", type=float, default=1e-5, help="llama: RMSNorm epsilon")


def llama_from_arguments(V, cfg, args):
    """Completes cfg (layers, d_model, heads, d_mlp, ctx, experts, topk) from the flags of
    add_llama_arguments and builds the model; exits with a message on a bad combination."""
    cfg["kv_heads"] = args.kv_heads or cfg["heads"]
    if cfg["heads"] % cfg["kv_heads"]:
        raise SystemExit("kv-heads must divide heads")
    cfg["moe_ffn"], cfg["shared_ffn"] = args.moe_ffn, args.moe_shared_ffn
    cfg["norm_topk"] = (args.moe_norm_topk == "on" or
                        args.moe_norm_topk == "auto" and cfg["topk"] >= 2)
    return Llama(V, cfg["ctx"], cfg["layers"], cfg["d_model"], cfg["heads"], cfg["kv_heads"],
                 cfg["d_mlp"], cfg["experts"], cfg["topk"], cfg["moe_ffn"], cfg["norm_topk"],
                 cfg["shared_ffn"], args.rope_theta, args.norm_eps)
