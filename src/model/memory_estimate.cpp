#include "model/memory_estimate.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/ffn.h"
#include "model/params.h"
#include "util/byte_size.h"
#include "util/error.h"
#include "util/memory_available.h"

namespace tinygpt {

void MemoryEstimate::add(const std::string& kind, double bytes) {
    for (auto& item : items)
        if (item.kind == kind) {
            item.bytes += bytes;
            return;
        }
    items.push_back({kind, bytes});
}

double MemoryEstimate::total_bytes() const {
    double total = 0;
    for (const auto& item : items) total += item.bytes;
    return total;
}

double MemoryEstimate::bytes_of(const std::string& kind) const {
    for (const auto& item : items)
        if (item.kind == kind) return item.bytes;
    return 0;
}

std::string MemoryEstimate::breakdown() const {
    std::string out;
    for (const auto& item : items) {
        if (item.bytes <= 0) continue;
        out += (out.empty() ? "" : " · ") + item.kind + " " + format_bytes(item.bytes);
    }
    return out;
}

namespace {

constexpr double kWord = 4;  // sizeof(float) == sizeof(int)

// One Arena::take of `count` floats or ints. Every take starts on a 64-byte boundary and the
// arena's size is rounded up to one, so an arena is the sum of its takes, each rounded up.
double take(double count) {
    return std::ceil(count * kWord / 64.0) * 64.0;
}

// The model's widths in double: an absurd --heads × --head-dim must not overflow here.
struct Widths {
    double C, V, H, KVH, Q, KV, W, mlp, expert, shared, E, K;
    bool gpt, qk_norm, jitter, sparse;
    explicit Widths(const ModelConfig& c)
        : C(c.d_model),
          V(c.vocab),
          H(c.heads),
          KVH(c.kv_heads > 0 ? c.kv_heads : c.heads),
          Q(H * (c.head_size > 0 ? c.head_size : c.d_model / c.heads)),
          KV(KVH * (c.head_size > 0 ? c.head_size : c.d_model / c.heads)),
          W(Q + 2 * KV),
          mlp(c.d_mlp),
          expert(c.moe_ffn > 0 ? c.moe_ffn : c.d_mlp),
          shared(c.shared_ffn),
          E(c.experts),
          K(c.topk),
          gpt(!c.is_llama()),
          qk_norm(c.is_llama() && c.qk_norm != QkNorm::None),
          jitter(c.jitter > 0.0f),
          sparse(c.dispatch == DispatchMode::Sparse) {}
    // ffn_pre_width: SwiGLU keeps gate|up (2M), GELU the pre-activation (M).
    double pre(double M) const { return gpt ? M : 2 * M; }
};

// MoeActivations::layout and MoeScratch::layout for N tokens.
double moe_activation_bytes(const Widths& w, double N) {
    const double rows = w.sparse ? N * w.K : w.E * N, P = w.pre(w.expert);
    double b = take(N * w.E) + take(N) + take(N * w.K) + take(N * w.K) + take(w.E) + take(w.E + 1) +
               take(N * w.K) + take(N * w.K);
    if (w.sparse) b += take(rows * w.C);
    b += take(rows * P) + take(rows * w.expert) + take(rows * w.C);
    if (w.jitter) b += 2 * take(N * w.C);
    return b;
}
double moe_scratch_bytes(const Widths& w, double N) {
    const double rows = w.sparse ? N * w.K : w.E * N;
    return take(N * w.K) + take(N * w.E) + take(rows * w.C) + take(rows * w.pre(w.expert)) +
           take(rows * w.C);
}

// SharedExpertActivations / SharedExpertScratch: the same four shapes.
double shared_expert_bytes(const Widths& w, double N) {
    return take(N * 2 * w.shared) + take(N * w.shared) + take(N * w.C) + take(N);
}
double shared_expert_scratch_bytes(const Widths& w, double N) {
    return take(N * 2 * w.shared) + 2 * take(N * w.C) + take(N);
}

// FeedForwardActivations::layout of one layer.
double ffn_activation_bytes(const Widths& w, bool moe_layer, double N) {
    if (!moe_layer) return take(N * w.pre(w.mlp)) + take(N * w.mlp);
    return moe_activation_bytes(w, N) + (w.shared > 0 ? shared_expert_bytes(w, N) : 0);
}

// BlockActivations::layout of one layer for B sequences of T tokens.
double block_activation_bytes(const Widths& w, bool moe_layer, double B, double T) {
    const double N = B * T;
    double b = take(N * w.C) + (w.gpt ? take(N) : 0) + take(N);  // ln1
    if (w.qk_norm) b += take(N * w.W) + take(N * w.H) + take(N * w.KVH);
    b += take(N * w.W) + take(B * w.H * T * T) + take(N * w.Q) + take(N * w.C);  // qkv … mid
    b += take(N * w.C) + (w.gpt ? take(N) : 0) + take(N);                        // ln2
    return b + ffn_activation_bytes(w, moe_layer, N);
}

// BlockScratch::layout (with FeedForwardScratch).
double block_scratch_bytes(const ModelConfig& cfg, const Widths& w, double N) {
    double b = take(N * w.C) + take(N * w.W) + take(N * w.Q) + take(N * w.C);
    if (cfg.moe_layer_count() < cfg.layers) b += take(N * w.pre(w.mlp));
    if (cfg.is_moe()) b += moe_scratch_bytes(w, N);
    if (cfg.is_moe() && w.shared > 0) b += shared_expert_scratch_bytes(w, N);
    return b;
}

// RopeTable(ctx, head_dim): cos and sin of every position × head_dim/2 (Llama family).
double rope_table_bytes(const ModelConfig& cfg) {
    if (!cfg.is_llama()) return 0;
    const double half = (cfg.head_size > 0 ? cfg.head_size : cfg.d_model / cfg.heads) / 2;
    return 2 * kWord * static_cast<double>(cfg.ctx) * half;
}

// The KV-cache rows InferenceSession::reserve_positions ends with: the first chunk's
// positions (at least 64), then doubling each time a position no longer fits, never past the
// context.
double kv_cache_rows(int64_t ctx, int64_t first_chunk, int64_t positions) {
    int64_t rows = std::min<int64_t>(ctx, std::max<int64_t>(first_chunk, 64));
    while (positions > rows) rows = std::min(ctx, std::max<int64_t>(2 * rows, 64));
    return static_cast<double>(rows);
}

// InferenceFfn::reserve for `tokens` rows: MLP scratch for the widest MLP over N rows (N·K for
// the experts), and for MoE models the gathered rows, their outputs and the router's buffers.
double inference_ffn_bytes(const ModelConfig& cfg, double N) {
    const double width =
        std::max({cfg.d_mlp, cfg.is_moe() ? cfg.expert_width() : 0, std::max(cfg.shared_ffn, 0)});
    const double rows = cfg.is_moe() ? std::max(N, N * cfg.topk) : N;
    const double pre = cfg.is_llama() ? 2 * width : width;
    double b = kWord * rows * (pre + width);
    if (cfg.is_moe()) {
        const double E = cfg.experts, K = cfg.topk, C = cfg.d_model;
        b += kWord * (2 * N * K * C + N * E + N + N * K);  // y, xg, probs, lse, gates
        b += kWord * (N * K + E + E + 1 + 2 * N * K);      // topk, counts, offsets, row maps
        if (cfg.shared_ffn > 0) b += kWord * (N * C + N);
    }
    return b;
}

// InferenceSession for a largest chunk of `chunk` tokens, `positions` positions in the cache
// and `logit_rows` rows of logits.
void add_session(MemoryEstimate& e, const ModelConfig& cfg, int chunk, int positions,
                 double logit_rows, const std::string& scratch_kind) {
    Widths w(cfg);
    w.sparse = true;  // inference always dispatches sparsely
    const double T = chunk, L = cfg.layers;
    e.add("KV cache", 2 * L * kv_cache_rows(cfg.ctx, chunk, positions) * w.KV * kWord);
    // x, ln, tmp [T, C]; mean, rstd, token ids [T]; qkv [T, W]; att [T, Q] (reserve_chunk).
    double scratch = kWord * T * (3 * w.C + 3 + w.W + w.Q);
    if (w.qk_norm) scratch += kWord * T * (w.W + w.H + w.KVH);  // qkv_raw, q_rstd, k_rstd
    scratch += inference_ffn_bytes(cfg, T);
    e.add(scratch_kind, scratch + rope_table_bytes(cfg));
    e.add("logits", logit_rows * w.V * kWord);
}

// The arena of an inference-only model (eval, generation without the cache): the forward never
// writes the backward's scratch, so those pages are allocated but never become resident.
void add_inference_arena(MemoryEstimate& e, const ModelConfig& cfg, double B, double T) {
    for (const auto& item : model_arena_estimate(cfg, B, T).items)
        if (item.kind != "backward scratch") e.add(item.kind, item.bytes);
    e.add("activations", rope_table_bytes(cfg));
}

// What an inference command holds before it computes: the weights, memory-mapped or in memory;
// either way resident once the forward touches them. stored_bytes = 0: one f32 buffer.
MemoryEstimate inference_weights(const ModelConfig& cfg, double stored_bytes) {
    MemoryEstimate e;
    e.add("weights", stored_bytes > 0 ? stored_bytes : parameter_buffer_bytes(cfg));
    return e;
}

}  // namespace

double parameter_buffer_bytes(const ModelConfig& cfg, int expert_parallel) {
    const Widths w(cfg);
    constexpr double kIntMax = std::numeric_limits<int>::max();
    // ModelConfig's own widths are ints: past them the model is far beyond any memory, and a
    // lower bound (the attention projections) is enough to say so.
    if (w.W > kIntMax || w.Q > kIntMax) return kWord * cfg.layers * (w.W + w.Q) * w.C;
    const double params = cfg.total_params_estimate();
    // The exact layout (padding included) when it is cheap to build (a 4096-expert model has
    // tens of thousands of tensors); padding is at most 15 floats per tensor, nothing next to
    // a billion parameters.
    if (params < 1e9) {
        const ExpertShard shard = expert_parallel > 1 && cfg.is_moe()
                                      ? expert_shard(cfg.experts, expert_parallel, 0)
                                      : ExpertShard{};
        return kWord * static_cast<double>(ParameterLayout(cfg, shard).total());
    }
    return kWord * params;  // an upper bound under expert parallelism
}

MemoryEstimate model_arena_estimate(const ModelConfig& cfg, double B, double T) {
    const Widths w(cfg);
    const double N = B * T, L = cfg.layers;
    MemoryEstimate e;
    // A layer's activations depend only on whether it is MoE: count the two kinds, do not loop
    // over an absurd --layers.
    const double moe_layers = cfg.moe_layer_count();
    double saved = (L + 1) * take(N * w.C);  // residual streams
    if (moe_layers > 0) saved += moe_layers * block_activation_bytes(w, true, B, T);
    if (moe_layers < L) saved += (L - moe_layers) * block_activation_bytes(w, false, B, T);
    saved += take(N * w.C) + 2 * take(N);  // final norm, mean, rstd
    e.add("activations", saved);
    e.add("logits", take(N * w.V) + take(N));  // logits and per-token losses
    e.add("batch", 2 * take(N));               // token ids and targets
    e.add("backward scratch", take(N * w.C) + block_scratch_bytes(cfg, w, N));
    return e;
}

MemoryEstimate estimate_training(const ModelConfig& cfg, const TrainingMemoryPlan& plan) {
    const double params = parameter_buffer_bytes(cfg, plan.expert_parallel);
    MemoryEstimate e;
    e.add("weights", params);
    e.add("gradients", params);
    e.add("AdamW moments", 2 * params);
    for (const auto& item : model_arena_estimate(cfg, plan.batch, cfg.ctx).items)
        e.add(item.kind, item.bytes);
    e.add("activations", rope_table_bytes(cfg));
    // The trainer's own inputs/targets [batch, ctx], refilled every micro-batch.
    e.add("batch", 2 * kWord * static_cast<double>(plan.batch) * cfg.ctx);
    if (plan.sample_tokens > 0) {
        const int prompt = std::clamp(plan.sample_prompt_tokens, 1, cfg.ctx);
        const int64_t positions = std::min<int64_t>(cfg.ctx, int64_t{prompt} + plan.sample_tokens);
        add_session(e, cfg, prompt, static_cast<int>(positions), 1, "samples");
    }
    e.add("loaded file", plan.loaded_file_bytes);
    e.add("corpus", kWord * plan.corpus_tokens);
    return e;
}

MemoryEstimate estimate_evaluation(const ModelConfig& cfg, double windows, int window_tokens,
                                   double stored_weight_bytes) {
    MemoryEstimate e = inference_weights(cfg, stored_weight_bytes);
    if (stored_weight_bytes > 0) {  // evaluate(): window by window through a session
        add_session(e, cfg, window_tokens, window_tokens, window_tokens, "inference scratch");
        windows = 1;
    } else {
        add_inference_arena(e, cfg, windows, window_tokens);
    }
    e.add("batch", 2 * kWord * windows * window_tokens);  // evaluate()'s inputs and targets
    return e;
}

MemoryEstimate estimate_scoring(const ModelConfig& cfg, int tokens, double stored_weight_bytes) {
    MemoryEstimate e = inference_weights(cfg, stored_weight_bytes);
    add_session(e, cfg, tokens, tokens, tokens, "inference scratch");
    return e;
}

MemoryEstimate estimate_generation(const ModelConfig& cfg, const GenerationMemoryPlan& plan) {
    MemoryEstimate e = inference_weights(cfg, plan.stored_weight_bytes);
    if (!plan.use_cache && plan.stored_weight_bytes <= 0) {  // the training forward for [1, ctx]
        add_inference_arena(e, cfg, 1, cfg.ctx);
        return e;
    }
    const int prompt = std::clamp(plan.prompt_tokens, 1, cfg.ctx);
    // Positions fed: the prompt, then every generated token but the last.
    const double wanted = static_cast<double>(prompt) + std::max(0, plan.new_tokens - 1);
    int chunk = prompt;
    if (wanted > cfg.ctx && !plan.stop_at_context) {
        // Sliding refeeds the window after dropping 1 (learned positions) or half of the
        // slidable part (RoPE): infer/generate.cpp.
        const int keep = std::min(plan.keep, prompt);
        const int drop = cfg.has_position_table() ? 1 : std::max(1, (cfg.ctx - keep) / 2);
        chunk = std::max(chunk, cfg.ctx - drop + 1);
    }
    if (!plan.use_cache) chunk = cfg.ctx;  // recomputing: the whole sequence each time
    add_session(e, cfg, chunk, static_cast<int>(std::min<double>(wanted, cfg.ctx)), 1,
                "inference scratch");
    return e;
}

MemoryBudget available_memory_budget() {
    const AvailableMemory available = available_memory();
    MemoryBudget budget;
    budget.bytes = available.bytes;
    budget.source = available.source;
    return budget;
}

void require_fits(const MemoryEstimate& estimate, const MemoryBudget& budget,
                  const std::string& advice) {
    const double need = estimate.total_bytes();
    if (budget.bytes <= 0 || need <= budget.bytes) return;
    const std::string have =
        budget.user_limit
            ? "the limit is " + format_bytes(budget.bytes) + " (" + budget.source + ")"
            : "only " + format_bytes(budget.bytes) + " is available (" + budget.source + ")";
    throw Error("not enough memory: this needs about " + format_bytes(need) + " (" +
                estimate.breakdown() + ") but " + have + "; " + advice);
}

}  // namespace tinygpt
