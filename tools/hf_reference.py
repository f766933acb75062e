#!/usr/bin/env python3
"""Small Hugging Face model directories of every model type tinygpt loads, with reference logits.

An independent float64 implementation of the Hugging Face transformers forward pass for the model
types llama, mistral, qwen2, qwen3, mixtral, qwen2_moe, qwen3_moe, olmoe and gpt2, computed from
the weights as stored (bf16/f16 checkpoints: from the rounded values). No transformers or
safetensors package: safetensors files are read and written by hand here.

    /usr/bin/python3 tools/hf_reference.py --out-dir tests/data/hf         # regenerate all cases
    /usr/bin/python3 tools/hf_reference.py --check-dir DIR --tokens 1,2,3 [--out FILE]
    /usr/bin/python3 tools/hf_reference.py --self-check [--out-dir tests/data/hf]
    /usr/bin/python3 tools/hf_reference.py --big DIR [--size-mb 1000]     # import benchmark

The primitives shared with the TGTD references (RMSNorm, rotate-half RoPE, repeat_kv, top-K with
ties to the lower index) are imported from tools/torch_reference_llama.py / torch_reference.py.
See tools/README.md ("hf_reference.py") for the cases, the file formats and the HF semantics.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import topk_lower_index  # noqa: E402
from torch_reference_llama import repeat_kv, rms_norm, rope_cos_sin, rotate_half  # noqa: E402

MARGIN = 1e-3  # min gap between the K-th and (K+1)-th router probability, every token and layer
T_TOKENS = 12

LLAMA_LIKE = ("llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe", "olmoe")
SUPPORTED = LLAMA_LIKE + ("gpt2",)
ARCH = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
        "qwen3": "Qwen3ForCausalLM", "mixtral": "MixtralForCausalLM",
        "qwen2_moe": "Qwen2MoeForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM",
        "olmoe": "OlmoeForCausalLM", "gpt2": "GPT2LMHeadModel"}
# HF config-class defaults of the fields we read (transformers 4.57 / 5.x configuration_*.py).
DEFAULT_EPS = {"llama": 1e-6, "mistral": 1e-6, "qwen2": 1e-6, "qwen3": 1e-6, "mixtral": 1e-5,
               "qwen2_moe": 1e-6, "qwen3_moe": 1e-6, "olmoe": 1e-5}
DEFAULT_THETA = {"mixtral": 1e6}  # the others: 10000


# ---------------------------------------------------------------------------------------------
# safetensors, by hand: u64 LE header length N, N bytes of JSON (space-padded to a multiple of
# 8 here), then the raw little-endian data; data_offsets are relative to the end of the header.
# ---------------------------------------------------------------------------------------------
ST_DTYPES = {"F32": (4, torch.float32), "BF16": (2, torch.bfloat16), "F16": (2, torch.float16)}
DTYPE_NAME = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}
CONFIG_DTYPE = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.float32:
        return t.numpy().astype("<f4", copy=False).tobytes()
    return t.view(torch.int16).numpy().astype("<i2", copy=False).tobytes()  # bf16 / f16 bits


def st_header(entries):
    """entries: list of (name, dtype name, shape). Returns (header bytes incl. length, sizes)."""
    hdr, off = {"__metadata__": {"format": "pt"}}, 0
    for name, dt, shape in entries:
        n = ST_DTYPES[dt][0] * int(np.prod(shape, dtype=np.int64))
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    js = json.dumps(hdr, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    return struct.pack("<Q", len(js)) + js, off


def write_safetensors(path, tensors):
    """tensors: dict name -> torch tensor (F32/BF16/F16); written sorted by name."""
    names = sorted(tensors)
    head, _ = st_header([(n, DTYPE_NAME[tensors[n].dtype], tuple(tensors[n].shape)) for n in names])
    with open(path, "wb") as f:
        f.write(head)
        for n in names:
            f.write(tensor_bytes(tensors[n]))


def read_safetensors(path):
    """Returns dict name -> torch tensor in its stored dtype (F32/BF16/F16 only)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: truncated")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} past the end of the file")
    hdr = json.loads(data[8:8 + n].decode("utf-8"))
    body = memoryview(data)[8 + n:]
    out, spans = {}, []
    for name, e in hdr.items():
        if name == "__metadata__":
            continue
        if e["dtype"] not in ST_DTYPES:
            raise ValueError(f"{path}: {name}: unsupported dtype {e['dtype']}")
        size, dt = ST_DTYPES[e["dtype"]]
        b, end = e["data_offsets"]
        shape = [int(s) for s in e["shape"]]
        if end - b != size * int(np.prod(shape, dtype=np.int64)) or end > len(body) or b < 0:
            raise ValueError(f"{path}: {name}: bad data_offsets {b, end} for shape {shape}")
        spans.append((b, end, name))
        raw = bytes(body[b:end])
        if dt == torch.float32:
            t = torch.from_numpy(np.frombuffer(raw, "<f4").copy())
        else:
            t = torch.from_numpy(np.frombuffer(raw, "<i2").copy()).view(dt)
        out[name] = t.reshape(shape)
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise ValueError(f"{path}: {n0} and {n1} overlap")
    return out


def load_checkpoint(d):
    """model.safetensors, or model.safetensors.index.json + its shards. Refuses duplicates."""
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            wm = json.load(f)["weight_map"]
        out = {}
        for shard in sorted(set(wm.values())):
            part = read_safetensors(os.path.join(d, shard))
            for n, t in part.items():
                if wm.get(n) != shard:
                    raise ValueError(f"{shard}: {n} is not mapped to this shard in the index")
                if n in out:
                    raise ValueError(f"duplicate tensor {n}")
                out[n] = t
        missing = set(wm) - set(out)
        if missing:
            raise ValueError(f"index names tensors absent from their shards: {sorted(missing)[:5]}")
        return out
    return read_safetensors(os.path.join(d, "model.safetensors"))


# ---------------------------------------------------------------------------------------------
# Config -> Spec (HF semantics, config-class defaults where a field is absent)
# ---------------------------------------------------------------------------------------------
class Spec:
    pass


def parse_config(c):
    mt = c.get("model_type")
    if mt not in SUPPORTED:
        raise ValueError(f"unsupported model_type {mt!r}")
    s = Spec()
    s.model_type = mt
    s.V = int(c["vocab_size"])
    if mt == "gpt2":
        s.C, s.L, s.H = int(c["n_embd"]), int(c["n_layer"]), int(c["n_head"])
        s.n_pos = int(c["n_positions"])
        s.inner = int(c["n_inner"]) if c.get("n_inner") is not None else 4 * s.C
        s.eps = float(c.get("layer_norm_epsilon", 1e-5))
        s.tie = bool(c.get("tie_word_embeddings", True))
        if c.get("activation_function", "gelu_new") != "gelu":
            raise ValueError(f"gpt2 activation_function {c.get('activation_function')!r}: only "
                             "'gelu' (exact erf) is supported")
        if not c.get("scale_attn_weights", True) or c.get("scale_attn_by_inverse_layer_idx"):
            raise ValueError("gpt2: unsupported attention scaling options")
        if c.get("add_cross_attention"):
            raise ValueError("gpt2: cross attention is not supported")
        if s.C % s.H:
            raise ValueError("gpt2: n_embd must be a multiple of n_head")
        s.hd = s.C // s.H
        s.sparse, s.E, s.K = [False] * s.L, 0, 0
        return s
    s.C, s.L, s.H = int(c["hidden_size"]), int(c["num_hidden_layers"]), int(c["num_attention_heads"])
    s.KVH = int(c.get("num_key_value_heads") or s.H)
    default_hd = 128 if mt == "qwen3" else None  # Qwen3Config's default head_dim is 128
    s.hd = int(c.get("head_dim", default_hd) or s.C // s.H)
    if s.H % s.KVH:
        raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
    s.eps = float(c.get("rms_norm_eps", DEFAULT_EPS[mt]))
    rp = c.get("rope_parameters")  # transformers v5 form
    rs = c.get("rope_scaling")
    if rp is not None:
        if rp.get("rope_type", rp.get("type", "default")) != "default":
            raise ValueError(f"rope_parameters {rp}: only the default RoPE is supported")
        s.rope_theta = float(rp.get("rope_theta", c.get("rope_theta", DEFAULT_THETA.get(mt, 1e4))))
    else:
        s.rope_theta = float(c.get("rope_theta", DEFAULT_THETA.get(mt, 1e4)))
    if rs is not None and rs.get("rope_type", rs.get("type", "default")) != "default":
        raise ValueError(f"rope_scaling {rs}: not supported")
    if float(c.get("partial_rotary_factor", 1.0)) != 1.0:
        raise ValueError("partial_rotary_factor != 1 is not supported")
    if c.get("hidden_act", "silu") != "silu":
        raise ValueError(f"hidden_act {c.get('hidden_act')!r}: only silu is supported")
    if c.get("use_sliding_window"):
        raise ValueError("use_sliding_window true is not supported")
    if mt in ("mistral", "mixtral") and c.get("sliding_window") is not None:
        s.window = int(c["sliding_window"])  # no effect while the sequence is not longer
    else:
        s.window = None
    if mt == "olmoe" and c.get("clip_qkv") is not None:
        raise ValueError("olmoe clip_qkv is not supported")
    s.tie = bool(c.get("tie_word_embeddings", False))
    ab = bool(c.get("attention_bias", False))
    if mt in ("qwen2",):
        s.qkv_bias, s.o_bias = True, False
    elif mt == "qwen2_moe":
        s.qkv_bias, s.o_bias = bool(c.get("qkv_bias", True)), False
    elif mt in ("llama", "qwen3", "qwen3_moe", "olmoe"):
        s.qkv_bias = s.o_bias = ab
    else:  # mistral, mixtral
        s.qkv_bias = s.o_bias = False
    s.mlp_bias = bool(c.get("mlp_bias", False)) if mt == "llama" else False
    s.qk_norm = {"qwen3": "head", "qwen3_moe": "head", "olmoe": "full"}.get(mt)
    if s.qk_norm == "full" and s.hd * s.H != s.C:
        raise ValueError("olmoe needs head_dim * heads == hidden_size")
    s.I = int(c.get("intermediate_size", 0))
    s.E = s.K = 0
    s.norm_topk, s.moe_I, s.shared_I = False, 0, 0
    sparse = [False] * s.L
    if mt == "mixtral":
        s.E, s.K = int(c.get("num_local_experts", 8)), int(c.get("num_experts_per_tok", 2))
        s.norm_topk, s.moe_I = True, s.I
        sparse = [True] * s.L
    elif mt == "olmoe":
        s.E, s.K = int(c.get("num_experts", 64)), int(c.get("num_experts_per_tok", 8))
        s.norm_topk, s.moe_I = bool(c.get("norm_topk_prob", False)), s.I
        sparse = [True] * s.L
    elif mt in ("qwen2_moe", "qwen3_moe"):
        s.E = int(c.get("num_experts", 60 if mt == "qwen2_moe" else 128))
        s.K = int(c.get("num_experts_per_tok", 4 if mt == "qwen2_moe" else 8))
        s.norm_topk = bool(c.get("norm_topk_prob", False))
        s.moe_I = int(c.get("moe_intermediate_size", 1408 if mt == "qwen2_moe" else 768))
        if mt == "qwen2_moe":
            s.shared_I = int(c.get("shared_expert_intermediate_size", 5632))
        step = int(c.get("decoder_sparse_step", 1))
        only = set(c.get("mlp_only_layers") or [])
        sparse = [(i not in only) and s.E > 0 and (i + 1) % step == 0 for i in range(s.L)]
    s.sparse = sparse
    if any(sparse) and not (1 <= s.K <= s.E):
        raise ValueError(f"num_experts_per_tok {s.K} vs {s.E} experts")
    return s


# ---------------------------------------------------------------------------------------------
# Tensor names. Canonical names (what forward() reads) are the HF Qwen2-MoE per-expert names;
# checkpoint names depend on the model type and on the expert layout ("per_expert" or "fused").
# ---------------------------------------------------------------------------------------------
def canonical_shapes(s):
    """Ordered list of (canonical name, shape)."""
    if s.model_type == "gpt2":
        C, M = s.C, s.inner
        p = "transformer."
        ps = [(p + "wte.weight", (s.V, C)), (p + "wpe.weight", (s.n_pos, C))]
        for i in range(s.L):
            b = f"{p}h.{i}."
            ps += [(b + "ln_1.weight", (C,)), (b + "ln_1.bias", (C,)),
                   (b + "attn.c_attn.weight", (C, 3 * C)), (b + "attn.c_attn.bias", (3 * C,)),
                   (b + "attn.c_proj.weight", (C, C)), (b + "attn.c_proj.bias", (C,)),
                   (b + "ln_2.weight", (C,)), (b + "ln_2.bias", (C,)),
                   (b + "mlp.c_fc.weight", (C, M)), (b + "mlp.c_fc.bias", (M,)),
                   (b + "mlp.c_proj.weight", (M, C)), (b + "mlp.c_proj.bias", (C,))]
        ps += [(p + "ln_f.weight", (C,)), (p + "ln_f.bias", (C,))]
        if not s.tie:
            ps += [("lm_head.weight", (s.V, C))]
        return ps
    C, hd = s.C, s.hd
    Q, KV = s.H * hd, s.KVH * hd

    def mlp(p, W, bias=False):
        r = [(p + "gate_proj.weight", (W, C)), (p + "up_proj.weight", (W, C)),
             (p + "down_proj.weight", (C, W))]
        if bias:
            r = [r[0], (p + "gate_proj.bias", (W,)), r[1], (p + "up_proj.bias", (W,)), r[2],
                 (p + "down_proj.bias", (C,))]
        return r

    ps = [("model.embed_tokens.weight", (s.V, C))]
    for i in range(s.L):
        b = f"model.layers.{i}."
        a = b + "self_attn."
        ps += [(b + "input_layernorm.weight", (C,))]
        for n, out in (("q", Q), ("k", KV), ("v", KV)):
            ps += [(a + f"{n}_proj.weight", (out, C))]
            if s.qkv_bias:
                ps += [(a + f"{n}_proj.bias", (out,))]
        ps += [(a + "o_proj.weight", (C, Q))]
        if s.o_bias:
            ps += [(a + "o_proj.bias", (C,))]
        if s.qk_norm == "head":
            ps += [(a + "q_norm.weight", (hd,)), (a + "k_norm.weight", (hd,))]
        elif s.qk_norm == "full":
            ps += [(a + "q_norm.weight", (Q,)), (a + "k_norm.weight", (KV,))]
        ps += [(b + "post_attention_layernorm.weight", (C,))]
        if not s.sparse[i]:
            ps += mlp(b + "mlp.", s.I, s.mlp_bias)
        else:
            ps += [(b + "mlp.gate.weight", (s.E, C))]
            for e in range(s.E):
                ps += mlp(b + f"mlp.experts.{e}.", s.moe_I)
            if s.shared_I > 0:
                ps += mlp(b + "mlp.shared_expert.", s.shared_I)
                ps += [(b + "mlp.shared_expert_gate.weight", (1, C))]
    ps += [("model.norm.weight", (C,))]
    if not s.tie:
        ps += [("lm_head.weight", (s.V, C))]
    return ps


MIXTRAL_W = {"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}


def to_checkpoint(s, P, layout):
    """Canonical dict -> checkpoint dict (hub names; fused: v5 3-D expert tensors)."""
    out = {}
    for n, t in P.items():
        if s.model_type == "mixtral" and layout == "per_expert" and ".mlp." in n:
            n = n.replace(".mlp.", ".block_sparse_moe.")
            for k, w in MIXTRAL_W.items():
                n = n.replace(f".{k}.weight", f".{w}.weight")
        if layout == "fused" and ".mlp.experts." in n:
            continue
        out[n] = t
    if layout == "fused":
        for i in range(s.L):
            if not s.sparse[i]:
                continue
            m = f"model.layers.{i}.mlp.experts."
            # gate_up_proj [E, 2I, H]: rows 0..I-1 = gate_proj, rows I..2I-1 = up_proj
            out[m + "gate_up_proj"] = torch.stack(
                [torch.cat([P[m + f"{e}.gate_proj.weight"], P[m + f"{e}.up_proj.weight"]], 0)
                 for e in range(s.E)])
            out[m + "down_proj"] = torch.stack(
                [P[m + f"{e}.down_proj.weight"] for e in range(s.E)])  # [E, H, I]
    return out


def from_checkpoint(s, raw):
    """Checkpoint dict -> (canonical dict, layout). Strict: exact name set and shapes."""
    raw = dict(raw)
    if s.model_type == "gpt2" and not any(n.startswith("transformer.") for n in raw):
        raw = {(n if n == "lm_head.weight" else "transformer." + n): t for n, t in raw.items()}
    fused = any(n.endswith(".mlp.experts.gate_up_proj") or n.endswith(".mlp.experts.down_proj")
                for n in raw)
    layout = "fused" if fused else "per_expert"
    want = canonical_shapes(s)
    # Expected checkpoint names and shapes: map a zero-size stand-in of every canonical tensor.
    stand = {n: torch.empty(shape, dtype=torch.float32) for n, shape in want}
    exp = {n: tuple(t.shape) for n, t in to_checkpoint(s, stand, layout).items()}
    missing = sorted(set(exp) - set(raw))
    extra = sorted(set(raw) - set(exp))
    if missing or extra:
        raise ValueError(f"{s.model_type} ({layout} experts): missing tensors {missing[:6]}"
                         f"{' ...' if len(missing) > 6 else ''}; unexpected tensors {extra[:6]}"
                         f"{' ...' if len(extra) > 6 else ''}")
    for n, shape in exp.items():
        if tuple(raw[n].shape) != shape:
            raise ValueError(f"{n}: shape {tuple(raw[n].shape)}, expected {shape}")
    P = {}
    for n, _ in want:
        src = n
        if s.model_type == "mixtral" and layout == "per_expert" and ".mlp." in n:
            src = n.replace(".mlp.", ".block_sparse_moe.")
            for k, w in MIXTRAL_W.items():
                src = src.replace(f".{k}.weight", f".{w}.weight")
        if layout == "fused" and ".mlp.experts." in n:
            m, rest = n.split(".mlp.experts.")
            e, kind = rest.split(".")[0:2]
            e, I = int(e), s.moe_I
            if kind == "down_proj":
                P[n] = raw[m + ".mlp.experts.down_proj"][e]
            else:
                gu = raw[m + ".mlp.experts.gate_up_proj"][e]
                P[n] = gu[:I] if kind == "gate_proj" else gu[I:]
            continue
        P[n] = raw[src]
    return P, layout


# ---------------------------------------------------------------------------------------------
# Forward (batch 1, positions 0..T-1), any float dtype; float64 for the reference
# ---------------------------------------------------------------------------------------------
def lin(x, P, name):
    return F.linear(x, P[name + ".weight"], P.get(name + ".bias"))


def attention(x, P, a, s):
    T = x.shape[0]
    H, KVH, hd = s.H, s.KVH, s.hd
    q, k, v = (lin(x, P, a + f"{n}_proj") for n in "qkv")  # [T, H*hd], [T, KVH*hd] x2
    if s.qk_norm == "full":  # OLMoE: RMSNorm over the whole projection, before the head split
        q = rms_norm(q, P[a + "q_norm.weight"], s.eps)
        k = rms_norm(k, P[a + "k_norm.weight"], s.eps)
    q, k, v = q.view(T, H, hd), k.view(T, KVH, hd), v.view(T, KVH, hd)
    if s.qk_norm == "head":  # Qwen3: per-head RMSNorm of size head_dim, before RoPE
        q = rms_norm(q, P[a + "q_norm.weight"], s.eps)
        k = rms_norm(k, P[a + "k_norm.weight"], s.eps)
    q, k, v = (t.transpose(0, 1)[None] for t in (q, k, v))  # [1, heads, T, hd]
    cos, sin = rope_cos_sin(s, T, x.dtype)
    q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    k, v = repeat_kv(k, H // KVH), repeat_kv(v, H // KVH)
    sc = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    sc = sc.masked_fill(~mask, float("-inf"))
    o = (torch.softmax(sc, dim=-1) @ v)[0].transpose(0, 1).reshape(T, H * hd)
    return lin(o, P, a + "o_proj")


def swiglu(x, P, p):
    return lin(F.silu(lin(x, P, p + "gate_proj")) * lin(x, P, p + "up_proj"), P, p + "down_proj")


def sparse_moe(h, P, m, s, info):
    logits = F.linear(h, P[m + "gate.weight"])
    probs = torch.softmax(logits, dim=-1)  # over all experts
    w, sel, sp = topk_lower_index(probs, s.K)
    if s.K < s.E:
        info["min_margin"] = min(info.get("min_margin", float("inf")),
                                 float((sp[:, s.K - 1] - sp[:, s.K]).min()))
    info.setdefault("routing", []).append(sel.clone())
    if s.norm_topk:
        w = w / w.sum(dim=-1, keepdim=True)
    out = torch.zeros_like(h)
    for e in range(s.E):
        tok, slot = torch.nonzero(sel == e, as_tuple=True)
        if tok.numel():
            out = out.index_add(0, tok, swiglu(h[tok], P, m + f"experts.{e}.") * w[tok, slot, None])
    if s.shared_I > 0:
        out = out + torch.sigmoid(F.linear(h, P[m + "shared_expert_gate.weight"])) * \
            swiglu(h, P, m + "shared_expert.")
    return out


def forward(s, P, tokens, info=None):
    """P: canonical dict (any float dtype). Returns logits [T, V]."""
    info = {} if info is None else info
    idx = torch.as_tensor(tokens, dtype=torch.int64)
    T = idx.numel()
    if s.model_type == "gpt2":
        p = "transformer."
        if T > s.n_pos:
            raise ValueError(f"{T} tokens > n_positions {s.n_pos}")
        ln = lambda x, n: F.layer_norm(x, (s.C,), P[n + ".weight"], P[n + ".bias"], s.eps)
        conv = lambda x, n: x @ P[n + ".weight"] + P[n + ".bias"]  # Conv1D: weight [in, out]
        x = P[p + "wte.weight"][idx] + P[p + "wpe.weight"][:T]
        for i in range(s.L):
            b = f"{p}h.{i}."
            qkv = conv(ln(x, b + "ln_1"), b + "attn.c_attn")
            q, k, v = (t.view(T, s.H, s.hd).transpose(0, 1) for t in qkv.split(s.C, dim=-1))
            sc = (q @ k.transpose(-1, -2)) / math.sqrt(s.hd)
            sc = sc.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
            o = (torch.softmax(sc, -1) @ v).transpose(0, 1).reshape(T, s.C)
            x = x + conv(o, b + "attn.c_proj")
            hdn = F.gelu(conv(ln(x, b + "ln_2"), b + "mlp.c_fc"))  # exact erf GELU
            x = x + conv(hdn, b + "mlp.c_proj")
        h = ln(x, p + "ln_f")
        return F.linear(h, P[p + "wte.weight"] if s.tie else P["lm_head.weight"])
    if s.window is not None and T > s.window:
        raise ValueError(f"{T} tokens > sliding_window {s.window}: not supported")
    x = P["model.embed_tokens.weight"][idx]
    for i in range(s.L):
        b = f"model.layers.{i}."
        x = x + attention(rms_norm(x, P[b + "input_layernorm.weight"], s.eps), P,
                          b + "self_attn.", s)
        h = rms_norm(x, P[b + "post_attention_layernorm.weight"], s.eps)
        x = x + (sparse_moe(h, P, b + "mlp.", s, info) if s.sparse[i] else swiglu(h, P, b + "mlp."))
    h = rms_norm(x, P["model.norm.weight"], s.eps)
    return F.linear(h, P["model.embed_tokens.weight"] if s.tie else P["lm_head.weight"])


def next_token_loss(logits, tokens):
    t = torch.as_tensor(tokens, dtype=torch.int64)
    return F.cross_entropy(logits[:-1], t[1:])


def load_dir(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    s = parse_config(cfg)
    P, layout = from_checkpoint(s, load_checkpoint(d))
    return s, P, layout


def run_dir(d, tokens, dtype=torch.float64):
    s, P, layout = load_dir(d)
    for t in tokens:
        if not 0 <= t < s.V:
            raise ValueError(f"token {t} outside [0, {s.V})")
    P = {n: t.to(dtype) for n, t in P.items()}
    info = {}
    with torch.no_grad():
        logits = forward(s, P, tokens, info)
        loss = next_token_loss(logits, tokens) if len(tokens) > 1 else torch.tensor(float("nan"))
    return logits, float(loss), info, s, layout


def fmt(v):
    return format(float(v), ".9g")


def results_json(d):
    """Deterministic JSON text with 9-significant-digit floats."""
    parts = []
    for k, v in d.items():
        if isinstance(v, (list, tuple)):
            body = "[" + ",".join(str(int(x)) if isinstance(x, int) else fmt(x) for x in v) + "]"
        elif isinstance(v, str):
            body = json.dumps(v)
        elif isinstance(v, int):
            body = str(v)
        elif v is None or (isinstance(v, float) and not math.isfinite(v)):
            body = "null"
        else:
            body = fmt(v)
        parts.append(f"  {json.dumps(k)}: {body}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


# ---------------------------------------------------------------------------------------------
# Tokenizer: byte-level BPE (GPT-2 byte alphabet at ids = byte values, learned merges,
# <|endoftext|> as an added special token)
# ---------------------------------------------------------------------------------------------
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


N_MERGES = 40
TRAIN_TEXT = ("the quick brown fox jumps over the lazy dog. there is nothing that the other "
              "one can do, and then they went in the house where the thing was. in the "
              "beginning the world was without form; the earth and the heaven and the sea. "
              "on the other hand, it is the best of times and it is the worst of times; "
              "that is the question, whether to be or not to be, and what it means to them. ")


def build_tokenizer():
    """Returns (tokenizer.json dict, number of ids, eos id)."""
    import re
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    pat = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")
    words = {}
    for w in pat.findall(TRAIN_TEXT):
        key = tuple(b2u[c] for c in w.encode("utf-8"))
        words[key] = words.get(key, 0) + 1
    merges = []
    for _ in range(N_MERGES):
        pairs = {}
        for w, n in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + n
        (a, b), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))  # most frequent, then lexical
        merges.append(f"{a} {b}")
        vocab[a + b] = len(vocab)
        new = {}
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + n
        words = new
    eos = len(vocab)
    vocab["<|endoftext|>"] = eos
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": eos, "content": "<|endoftext|>", "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False,
                          "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    return tok, len(vocab), eos


def write_json(path, obj, indent=2):
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def write_tokenizer_files(d, max_len):
    tok, n, eos = build_tokenizer()
    write_json(os.path.join(d, "tokenizer.json"), tok, indent=None)
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "add_bos_token": False, "add_prefix_space": False,
        "added_tokens_decoder": {str(eos): {"content": "<|endoftext|>", "lstrip": False,
                                            "normalized": False, "rstrip": False,
                                            "single_word": False, "special": True}},
        "bos_token": "<|endoftext|>", "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>", "model_max_length": max_len, "pad_token": None,
        "tokenizer_class": "GPT2Tokenizer", "unk_token": "<|endoftext|>"})
    return n, eos


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------
# Common shape defaults for the llama-like cases; each case overrides what it needs.
BASE = dict(V=304, C=32, L=2, H=4, KVH=2, hd=None, I=48, tie=False, eps=1e-5, theta=1e4,
            E=0, K=0, moe_I=0, shared_I=0, norm_topk=False, step=1, only=[], attn_bias=False)

CASES = {
    # name: (model_type, dtype, shards, layout, v5-style config, overrides, base seed)
    "llama_dense_tied_f32": ("llama", torch.float32, 1, "per_expert", False,
                             dict(I=64, tie=True, hd=8), 11000),
    "llama_bias_bf16_sharded": ("llama", torch.bfloat16, 2, "per_expert", False,
                                dict(C=48, hd=16, attn_bias=True, theta=5e5), 12000),
    "mistral_f32": ("mistral", torch.float32, 1, "per_expert", False,
                    dict(V=300, hd=16, I=32, tie=True, theta=1e6), 13000),
    "qwen2_f32": ("qwen2", torch.float32, 1, "per_expert", False,
                  dict(tie=True, eps=1e-6, theta=1e6), 14000),
    "qwen3_bf16": ("qwen3", torch.bfloat16, 1, "per_expert", False,
                   dict(C=48, hd=16, eps=1e-6, theta=1e6), 15000),
    "mixtral_f32_sharded": ("mixtral", torch.float32, 2, "per_expert", False,
                            dict(V=300, tie=True, E=4, K=2, I=20, theta=1e6), 16000),
    "mixtral_fused_f32": ("mixtral", torch.float32, 1, "fused", True,
                          dict(V=300, tie=True, E=4, K=2, I=20, theta=1e6), 17000),
    "qwen2_moe_bf16": ("qwen2_moe", torch.bfloat16, 1, "per_expert", False,
                       dict(L=3, E=8, K=4, moe_I=16, shared_I=32, step=2, eps=1e-6), 18000),
    "qwen3_moe_f32": ("qwen3_moe", torch.float32, 1, "per_expert", False,
                      dict(V=300, KVH=1, hd=12, I=32, E=8, K=2, moe_I=16, only=[0],
                           norm_topk=True, tie=True, eps=1e-6, theta=1e6), 19000),
    "qwen3_moe_fused_bf16": ("qwen3_moe", torch.bfloat16, 1, "fused", True,
                             dict(hd=16, I=48, E=8, K=4, moe_I=16, norm_topk=True, eps=1e-6,
                                  theta=1e6), 20000),
    "olmoe_f32": ("olmoe", torch.float32, 1, "per_expert", False,
                  dict(V=300, tie=True, E=8, K=2, I=10), 21000),
    "gpt2_f32": ("gpt2", torch.float32, 1, None, False, dict(n_pos=64, inner=96, tie=True), 22000),
}
MAX_POS = 64


def make_config(mt, o, dtype, v5, eos):
    L = o["L"]
    if mt == "gpt2":
        return {"activation_function": "gelu", "architectures": [ARCH[mt]], "attn_pdrop": 0.0,
                "bos_token_id": eos, "embd_pdrop": 0.0, "eos_token_id": eos,
                "initializer_range": 0.02, "layer_norm_epsilon": 1e-5, "model_type": mt,
                "n_ctx": o["n_pos"], "n_embd": o["C"], "n_head": o["H"], "n_inner": o["inner"],
                "n_layer": L, "n_positions": o["n_pos"], "reorder_and_upcast_attn": False,
                "resid_pdrop": 0.0, "scale_attn_by_inverse_layer_idx": False,
                "scale_attn_weights": True, "summary_activation": None,
                "summary_first_dropout": 0.1, "summary_proj_to_labels": True,
                "summary_type": "cls_index", "summary_use_proj": True,
                "tie_word_embeddings": o["tie"], "torch_dtype": CONFIG_DTYPE[dtype],
                "transformers_version": "4.57.1", "use_cache": True, "vocab_size": o["V"]}
    c = {"architectures": [ARCH[mt]], "model_type": mt, "vocab_size": o["V"],
         "hidden_size": o["C"], "intermediate_size": o["I"], "num_hidden_layers": L,
         "num_attention_heads": o["H"], "num_key_value_heads": o["KVH"]}
    if mt not in ("qwen2", "qwen2_moe", "olmoe"):  # these configs have no head_dim field
        c["head_dim"] = o["hd"]
    c.update({"hidden_act": "silu", "max_position_embeddings": MAX_POS,
              "initializer_range": 0.02, "rms_norm_eps": o["eps"], "use_cache": True,
              "tie_word_embeddings": o["tie"]})
    if v5:
        c["rope_parameters"] = {"rope_theta": o["theta"], "rope_type": "default"}
    else:
        c["rope_theta"] = o["theta"]
        c["rope_scaling"] = None
    c["attention_dropout"] = 0.0
    if mt in ("llama", "qwen3", "qwen3_moe", "olmoe"):
        c["attention_bias"] = o["attn_bias"]
    if mt == "llama":
        c.update(mlp_bias=False, pretraining_tp=1)
    if mt in ("mistral", "mixtral"):
        c["sliding_window"] = None
    if mt in ("qwen2", "qwen3", "qwen2_moe", "qwen3_moe"):
        c.update(use_sliding_window=False, sliding_window=None, max_window_layers=L)
    if mt == "mixtral":
        c.update(num_local_experts=o["E"], num_experts_per_tok=o["K"], output_router_logits=False,
                 router_aux_loss_coef=0.02, router_jitter_noise=0.0)
    if mt in ("qwen2_moe", "qwen3_moe"):
        c.update(decoder_sparse_step=o["step"], moe_intermediate_size=o["moe_I"])
        if mt == "qwen2_moe":
            c.update(shared_expert_intermediate_size=o["shared_I"], qkv_bias=True)
        c.update(num_experts=o["E"], num_experts_per_tok=o["K"], norm_topk_prob=o["norm_topk"],
                 mlp_only_layers=o["only"], output_router_logits=False,
                 router_aux_loss_coef=0.001)
    if mt == "olmoe":
        c.update(clip_qkv=None, num_experts=o["E"], num_experts_per_tok=o["K"],
                 norm_topk_prob=o["norm_topk"], output_router_logits=False,
                 router_aux_loss_coef=0.01, pad_token_id=1)
    c.update(bos_token_id=eos, eos_token_id=eos)
    if v5:
        c.update(dtype=CONFIG_DTYPE[dtype], transformers_version="5.0.0")
    else:
        c.update(torch_dtype=CONFIG_DTYPE[dtype], transformers_version="4.57.1")
    return c


def init_weights(s, gen):
    """Canonical weights: matrices N(0, 0.05) (embeddings 0.1), norms 1 + N(0, 0.1), biases
    N(0, 0.05), routers N(0, 0.5), shared-expert gate N(0, 0.5). float32, in name order."""
    P = {}
    for n, shape in canonical_shapes(s):
        r = torch.randn(shape, generator=gen, dtype=torch.float32)
        if "norm" in n or "ln_" in n:
            t = (1.0 + 0.1 * r) if n.endswith(".weight") else 0.05 * r
        elif n.endswith("mlp.gate.weight") or n.endswith("shared_expert_gate.weight"):
            t = 0.5 * r
        elif "embed_tokens" in n or "wte" in n or "wpe" in n:
            t = 0.1 * r
        else:
            t = 0.05 * r
        P[n] = t
    return P


def shard_split(names, sizes, n):
    """Split the (sorted) names into n contiguous groups of about equal bytes."""
    total, groups, acc, cur = sum(sizes), [[] for _ in range(n)], 0, 0
    for name, sz in zip(names, sizes):
        if cur < n - 1 and acc >= total * (cur + 1) / n:
            cur += 1
        groups[cur].append(name)
        acc += sz
    return groups


def write_weights(d, tensors, shards):
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), tensors)
        return
    names = sorted(tensors)
    sizes = [t.numel() * t.element_size() for t in (tensors[n] for n in names)]
    wm = {}
    for k, group in enumerate(shard_split(names, sizes, shards)):
        fn = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors(os.path.join(d, fn), {n: tensors[n] for n in group})
        wm.update({n: fn for n in group})
    write_json(os.path.join(d, "model.safetensors.index.json"),
               {"metadata": {"total_size": sum(sizes)}, "weight_map": dict(sorted(wm.items()))})


def generate_case(name, out_dir, max_tries=2000):
    mt, dtype, shards, layout, v5, over, base = CASES[name]
    o = dict(BASE, **over)
    if mt == "gpt2":
        o.setdefault("n_pos", 64)
    if o["hd"] is None:
        o["hd"] = o["C"] // o["H"]
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    n_tok, eos = write_tokenizer_files(d, MAX_POS)
    assert n_tok <= o["V"]
    cfg = make_config(mt, o, dtype, v5, eos)
    s = parse_config(cfg)
    routed = any(s.sparse) and s.K < s.E
    for seed in range(base, base + max_tries):
        gen = torch.Generator().manual_seed(seed)
        P = {n: t.to(dtype) for n, t in init_weights(s, gen).items()}  # stored values
        tokens = torch.randint(0, s.V, (T_TOKENS,), generator=gen).tolist()
        if not any(t >= 256 for t in tokens):
            continue
        info = {}
        with torch.no_grad():
            logits = forward(s, {n: t.double() for n, t in P.items()}, tokens, info)
        if routed and info["min_margin"] < MARGIN:
            continue
        break
    else:
        sys.exit(f"{name}: no seed meets the routing margin {MARGIN}")
    loss = float(next_token_loss(logits, tokens))
    write_json(os.path.join(d, "config.json"), cfg)
    write_json(os.path.join(d, "generation_config.json"),
               {"_from_model_config": True, "bos_token_id": eos, "eos_token_id": eos,
                "transformers_version": cfg["transformers_version"]})
    write_weights(d, to_checkpoint(s, P, layout or "per_expert"), shards)
    margin = info.get("min_margin") if routed else None
    res = {"model_type": mt, "tokens": tokens, "logits": logits.reshape(-1).tolist(),
           "loss": loss, "min_router_margin": margin}
    with open(os.path.join(out_dir, name + ".expected.json"), "w") as f:
        f.write(results_json(res))
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"{name}: seed {seed}, {mt} {CONFIG_DTYPE[dtype]} {layout or ''} shards={shards}, "
          f"loss={loss:.6f}, min margin={'n/a' if margin is None else '%.3e' % margin}, "
          f"{size} bytes")
    return size


def cross_check(s, P, tokens):
    """Max |logits difference| against the TGTD references' forward passes (torch_reference.py
    for gpt2, torch_reference_llama.py for the llama family) where their model covers the case
    (head_dim = hidden/heads, no o_proj/MLP bias, no OLMoE norm, a moe_every/moe_dense_first
    layer rule); None where it does not."""
    import torch_reference as tr
    import torch_reference_llama as trl
    T = len(tokens)
    idx = torch.as_tensor([tokens], dtype=torch.int64)
    tgt = torch.zeros_like(idx)
    P = {n: t.double() for n, t in P.items()}
    if s.model_type == "gpt2":
        cfg = tr.Cfg(V=s.V, ctx=s.n_pos, L=s.L, C=s.C, H=s.H, M=s.inner, E=1, K=1, B=1, T=T,
                     aux_weight=0.0)
        if not s.tie:
            return None
        C, Q = s.C, {}
        Q["token_embedding.weight"] = P["transformer.wte.weight"]
        Q["position_embedding.weight"] = P["transformer.wpe.weight"]
        Q["ln_final.weight"], Q["ln_final.bias"] = P["transformer.ln_f.weight"], P["transformer.ln_f.bias"]
        for i in range(s.L):
            h, b = f"transformer.h.{i}.", f"blocks.{i}."
            for a, z in (("ln_1", "ln1"), ("ln_2", "ln2")):
                Q[b + z + ".weight"], Q[b + z + ".bias"] = P[h + a + ".weight"], P[h + a + ".bias"]
            W, B = P[h + "attn.c_attn.weight"], P[h + "attn.c_attn.bias"]
            for j, n in enumerate("qkv"):
                Q[b + f"attn.{n}_proj.weight"] = W[:, j * C:(j + 1) * C].t()
                Q[b + f"attn.{n}_proj.bias"] = B[j * C:(j + 1) * C]
            for src, dst in (("attn.c_proj", "attn.o_proj"), ("mlp.c_fc", "mlp.fc_in"),
                             ("mlp.c_proj", "mlp.fc_out")):
                Q[b + dst + ".weight"] = P[h + src + ".weight"].t()
                Q[b + dst + ".bias"] = P[h + src + ".bias"]
        return float((tr.forward(Q, idx, tgt, cfg)[0][0] - forward(s, P, tokens)).abs().max())
    if s.hd * s.H != s.C or s.o_bias or s.mlp_bias or s.qk_norm == "full":
        return None
    rule = None
    for first in range(s.L + 1):
        for every in range(1, s.L + 1):
            if [s.E > 1 and i >= first and (i + 1) % every == 0 for i in range(s.L)] == s.sparse:
                rule = rule or (first, every)
    if rule is None:
        return None
    cfg = trl.Cfg(vocab=s.V, ctx=max(16, T), layers=s.L, d_model=s.C, heads=s.H, kv_heads=s.KVH,
                  d_mlp=s.I, experts=max(1, s.E), topk=max(1, s.K), moe_ffn=s.moe_I,
                  shared_ffn=s.shared_I, moe_every=rule[1], moe_dense_first=rule[0],
                  norm_topk=int(s.norm_topk), qkv_bias=int(s.qkv_bias),
                  qk_norm=int(s.qk_norm == "head"), tie_embeddings=int(s.tie), B=1, T=T,
                  norm_eps=s.eps, rope_theta=s.rope_theta)
    cfg.norm_eps, cfg.rope_theta = s.eps, s.rope_theta  # not the float32-rounded values
    return float((trl.forward(P, idx, tgt, cfg)[0][0] - forward(s, P, tokens)).abs().max())


def self_check(out_dir):
    ok = True
    for name in CASES:
        d = os.path.join(out_dir, name)
        with open(os.path.join(out_dir, name + ".expected.json")) as f:
            exp = json.load(f)
        toks = exp["tokens"]
        ref = np.array(exp["logits"], np.float64)
        l64, loss64, i64, s, layout = run_dir(d, toks)
        l32, loss32, i32, _, _ = run_dir(d, toks, torch.float32)
        e64 = float(np.abs(l64.reshape(-1).numpy() - ref).max())
        el = abs(loss64 - exp["loss"])
        e32 = float(np.abs(l32.double().reshape(-1).numpy() - ref).max())
        same = all(torch.equal(a, b) for a, b in zip(i64.get("routing", []), i32.get("routing", [])))
        good = e64 < 1e-6 * max(1.0, float(np.abs(ref).max())) and el < 1e-6 and same and \
            exp["model_type"] == s.model_type and len(ref) == len(toks) * s.V
        with torch.no_grad():
            xc = cross_check(s, load_dir(d)[1], toks)
        good &= xc is None or xc < 1e-9
        ok &= good
        print(f"  {name}: {layout} reload f64 max|dlogits|={e64:.2e} |dloss|={el:.2e}; "
              f"f32 torch max|dlogits|={e32:.2e} |dloss|={abs(loss32 - exp['loss']):.2e} "
              f"same routing={same}; TGTD-reference forward "
              f"{'n/a' if xc is None else 'max|dlogits|=%.1e' % xc} {'ok' if good else 'FAIL'}")
    print("SELF-CHECK " + ("PASSED" if ok else "FAILED"))
    return ok


# ---------------------------------------------------------------------------------------------
# --big: a ~size-mb bf16 qwen3_moe checkpoint for an import benchmark, written tensor by tensor
# ---------------------------------------------------------------------------------------------
def write_big(d, size_mb, shard_mb=500, seed=0):
    os.makedirs(d, exist_ok=True)
    o = dict(BASE, V=32768, C=1024, H=16, KVH=4, hd=128, I=2816, E=32, K=4, moe_I=512,
             norm_topk=True, eps=1e-6, theta=1e6, L=1)
    per_layer = 2 * (o["C"] * (2 * o["H"] + 2 * o["KVH"]) * o["hd"] + 3 * o["E"] * o["C"] * o["moe_I"]
                     + o["E"] * o["C"])
    fixed = 2 * 2 * o["V"] * o["C"]
    o["L"] = max(1, round((size_mb * 1e6 - fixed) / per_layer))
    n_tok, eos = write_tokenizer_files(d, 4096)
    cfg = make_config("qwen3_moe", o, torch.bfloat16, False, eos)
    cfg["max_position_embeddings"] = 4096
    write_json(os.path.join(d, "config.json"), cfg)
    write_json(os.path.join(d, "generation_config.json"),
               {"bos_token_id": eos, "eos_token_id": eos, "transformers_version": "4.57.1"})
    s = parse_config(cfg)
    shapes = dict(canonical_shapes(s))
    names = sorted(shapes)
    sizes = [2 * int(np.prod(shapes[n])) for n in names]
    nshards = max(1, math.ceil(sum(sizes) / (shard_mb * 1e6)))
    gen = torch.Generator().manual_seed(seed)
    wm = {}
    for k, group in enumerate(shard_split(names, sizes, nshards)):
        fn = f"model-{k + 1:05d}-of-{nshards:05d}.safetensors"
        head, _ = st_header([(n, "BF16", shapes[n]) for n in group])
        with open(os.path.join(d, fn), "wb") as f:
            f.write(head)
            for n in group:
                if n.endswith("norm.weight"):
                    t = torch.ones(shapes[n], dtype=torch.bfloat16)
                else:
                    std = 0.5 if n.endswith("mlp.gate.weight") else 0.02
                    t = (torch.randn(shapes[n], generator=gen) * std).to(torch.bfloat16)
                f.write(tensor_bytes(t))
        wm.update({n: fn for n in group})
    write_json(os.path.join(d, "model.safetensors.index.json"),
               {"metadata": {"total_size": sum(sizes)}, "weight_map": dict(sorted(wm.items()))})
    print(f"{d}: qwen3_moe bf16, {s.L} layers, hidden {s.C}, {s.E} experts x {s.moe_I} top-{s.K}, "
          f"vocab {s.V}, {sum(sizes)} bytes of weights in {nshards} shards")


def main():
    ap = argparse.ArgumentParser(description="HF model directories with float64 reference logits.")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--out-dir", default=os.path.join(here, "tests", "data", "hf"))
    ap.add_argument("--only", default=None, help="comma-separated subset of " + ",".join(CASES))
    ap.add_argument("--self-check", action="store_true")
    ap.add_argument("--check-dir", default=None)
    ap.add_argument("--tokens", default=None, help="comma-separated token ids (--check-dir)")
    ap.add_argument("--out", default=None, help="write --check-dir's JSON here (default stdout)")
    ap.add_argument("--big", default=None, metavar="DIR")
    ap.add_argument("--size-mb", type=float, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(1)

    if args.check_dir:
        if not args.tokens:
            ap.error("--check-dir needs --tokens")
        toks = [int(t) for t in args.tokens.split(",")]
        try:
            logits, loss, info, s, _ = run_dir(args.check_dir, toks)
        except (ValueError, KeyError, OSError) as e:
            sys.exit(f"error: {e}")
        res = {"model_type": s.model_type, "tokens": toks, "logits": logits.reshape(-1).tolist(),
               "loss": loss, "min_router_margin": info.get("min_margin")}
        text = results_json(res)
        if args.out:
            with open(args.out, "w") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
        return
    if args.big:
        write_big(args.big, args.size_mb)
        return
    if args.self_check:
        sys.exit(0 if self_check(args.out_dir) else 1)
    os.makedirs(args.out_dir, exist_ok=True)
    for name in (list(CASES) if args.only is None else args.only.split(",")):
        generate_case(name, args.out_dir)


if __name__ == "__main__":
    main()
