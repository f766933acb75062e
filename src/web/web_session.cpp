#include "web/web_session.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "infer/evaluate.h"
#include "infer/generate.h"
#include "io/model_file.h"
#include "load/model_source.h"
#include "model/config.h"
#include "model/memory_estimate.h"
#include "model/model_weights.h"
#include "model/params.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"
#include "train/trainer.h"
#include "util/error.h"

namespace tinygpt {

using nlohmann::json;

struct WebSession::State {
    // The current model: one opened from a file, or the one being trained (then `trainer`).
    std::optional<OpenedModel> opened;
    std::unique_ptr<Corpus> corpus;  // outlives the trainer, which keeps a reference
    std::unique_ptr<Trainer> trainer;
    Tokenizer tokenizer = Tokenizer::bytes();
    int64_t val_every = 0;  // validate every so many steps (0: at the end only)

    bool has_model() const { return opened.has_value() || trainer != nullptr; }
    const ModelConfig& config() const {
        return trainer ? trainer->options().model : opened->config;
    }
    // Views of the current weights: the trainer's f32 buffer lives until its next step.
    ModelWeights weights() {
        if (trainer)
            return ModelWeights::from_f32(config(), trainer->gather_full_state(false).weights);
        return opened->weights;
    }
    // The facts of the current model (model_info's JSON); Error when there is none.
    json info();
};

namespace {

// JSON text for JavaScript: bytes that are not UTF-8 (a byte-level model may emit any byte) are
// replaced by U+FFFD rather than failing the whole answer.
std::string to_text(const json& value) {
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Runs `body`, turning any failure into {"error": message}: the page shows the message, and a
// bad file or option never takes the worker down.
template <typename Body>
std::string guarded(Body&& body) {
    try {
        return to_text(body());
    } catch (const std::bad_alloc&) {
        return json{{"error",
                     "out of memory: the page cannot hold what this needs (WebAssembly "
                     "has 4 GB at most); try a smaller model, batch or context"}}
            .dump();
    } catch (const std::exception& e) {
        return to_text(json{{"error", std::string(e.what())}});
    }
}

json parse_options(const std::string& text) {
    if (text.empty()) return json::object();
    json options = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!options.is_object()) throw Error("the options are not a JSON object: " + text);
    return options;
}

// options[key] as T, or `fallback` when absent or null; a value of the wrong type is an error
// naming the key.
template <typename T>
T option(const json& options, const char* key, T fallback) {
    const auto it = options.find(key);
    if (it == options.end() || it->is_null()) return fallback;
    const bool ok = std::is_same_v<T, std::string> ? it->is_string()
                    : std::is_same_v<T, bool>      ? it->is_boolean()
                                                   : it->is_number();
    if (!ok) throw Error(std::string("option \"") + key + "\" has the wrong type: " + it->dump());
    return it->get<T>();
}

json config_json(const ModelConfig& cfg) {
    return {{"arch", arch_name(cfg.arch)},
            {"vocab", cfg.vocab},
            {"ctx", cfg.ctx},
            {"layers", cfg.layers},
            {"d_model", cfg.d_model},
            {"heads", cfg.heads},
            {"kv_heads", cfg.kv_head_count()},
            {"head_dim", cfg.head_dim()},
            {"d_mlp", cfg.d_mlp},
            {"experts", cfg.experts},
            {"topk", cfg.topk},
            {"expert_width", cfg.expert_width()},
            {"shared_ffn", cfg.shared_ffn}};
}

std::vector<int> moe_layer_indices(const ModelConfig& cfg) {
    std::vector<int> layers;
    for (int l = 0; l < cfg.layers; ++l)
        if (cfg.is_moe_layer(l)) layers.push_back(l);
    return layers;
}

json info_json(const ModelWeights& weights, const Tokenizer& tokenizer, const std::string& format,
               double load_ms) {
    const ModelConfig& cfg = weights.config();
    json tensors = json::array();
    const auto& entries = weights.layout().entries();
    for (size_t i = 0; i < entries.size(); ++i)
        tensors.push_back({{"name", entries[i].name},
                           {"dtype", dtype_name(weights.view(i).dtype)},
                           {"shape", entries[i].shape}});
    return {{"format", format},
            {"family", arch_name(cfg.arch)},
            {"describe", cfg.describe()},
            {"params", cfg.total_params()},
            {"active_params", cfg.active_params()},
            {"weight_bytes", weights.stored_bytes()},
            {"dtype", weights.type_summary()},
            {"config", config_json(cfg)},
            {"moe_layers", moe_layer_indices(cfg)},
            {"tensors", std::move(tensors)},
            {"tokenizer", tokenizer.describe()},
            {"vocab", tokenizer.vocab_size()},
            {"load_ms", load_ms}};
}

uint64_t file_bytes(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

json WebSession::State::info() {
    if (!has_model()) throw Error("no model is open");
    if (trainer)
        return info_json(weights(), tokenizer,
                         "trained here (" + std::to_string(trainer->steps_done()) + " steps)", 0.0);
    return info_json(opened->weights, tokenizer, opened->format, opened->load_ms);
}

WebSession::WebSession() : state_(std::make_unique<State>()) {}
WebSession::~WebSession() = default;

std::string WebSession::open_model(const std::string& path) {
    return guarded([&] {
        OpenedModel model = tinygpt::open_model(path, ReadOptions{/*optimizer=*/false});
        // The old model goes only once the new one has opened: a bad file loses nothing.
        state_->trainer.reset();
        state_->corpus.reset();
        state_->tokenizer = model.tokenizer;
        state_->opened.emplace(std::move(model));
        return state_->info();
    });
}

std::string WebSession::model_info() const {
    return guarded([&] { return state_->info(); });
}

std::string WebSession::generate(const std::string& prompt, const std::string& options_text,
                                 const TokenCallback& on_token) {
    return guarded([&] {
        if (!state_->has_model()) throw Error("no model is open");
        const json options = parse_options(options_text);
        const ModelConfig& cfg = state_->config();
        const Tokenizer& tokenizer = state_->tokenizer;
        GenerateOptions gen;
        gen.max_new_tokens = option(options, "tokens", 200);
        gen.sampling.temperature = option(options, "temperature", 0.8f);
        gen.sampling.top_k = option(options, "top_k", 0);
        gen.sampling.top_p = option(options, "top_p", 1.0f);
        gen.seed = option<uint64_t>(options, "seed", 42);
        gen.keep = option(options, "keep", 0);
        gen.stop_at_context = option(options, "stop_at_context", false);
        gen.sampling.validate();
        gen.sample_vocab = tokenizer.vocab_size();
        gen.stop_token = tokenizer.eos_id().value_or(-1);
        if (prompt.empty())
            throw Error("the prompt is empty (the model needs a token to continue)");
        const std::vector<int> ids = tokenizer.encode(prompt);
        if (ids.empty()) throw Error("the prompt encodes to no tokens");

        GenerationMemoryPlan plan;
        plan.prompt_tokens = static_cast<int>(ids.size());
        plan.new_tokens = gen.max_new_tokens;
        plan.stop_at_context = gen.stop_at_context;
        plan.keep = gen.keep;
        require_fits(estimate_generation(cfg, plan), available_memory_budget(),
                     "the model is too large for this page: open a smaller one");

        // The routing of the forward that gives the next token's logits: its last row, per MoE
        // layer (the observer runs once per MoE layer, in order, before the token is drawn).
        const std::vector<int> moe_layers = moe_layer_indices(cfg);
        std::vector<int> slot_of_layer(cfg.layers, -1);
        for (size_t i = 0; i < moe_layers.size(); ++i)
            slot_of_layer[moe_layers[i]] = static_cast<int>(i);
        json routing = json::array();
        for (size_t i = 0; i < moe_layers.size(); ++i) routing.push_back(json::array());
        gen.routing = [&](int layer, const RouterDecisions& d) {
            const int slot = slot_of_layer[layer];
            if (slot < 0 || d.rows <= 0) return;
            json chosen = json::array();
            const size_t last = static_cast<size_t>(d.rows - 1) * d.k;
            for (int j = 0; j < d.k; ++j) chosen.push_back({d.topk[last + j], d.gates[last + j]});
            routing[slot] = std::move(chosen);
        };
        StreamingDecoder decoder(tokenizer);
        std::string text;
        bool stopped = false;
        gen.keep_going = [&] { return !stopped; };
        const GenerateStats stats = tinygpt::generate(state_->weights(), ids, gen, [&](int token) {
            const std::string piece = decoder.push(token);
            text += piece;
            if (on_token &&
                !on_token(to_text(json{{"id", token}, {"text", piece}, {"layers", routing}})))
                stopped = true;
        });
        text += decoder.finish();
        return json{{"prompt_tokens", stats.prompt_tokens},
                    {"generated", stats.generated},
                    {"stopped", stopped},
                    {"slides", stats.slides},
                    {"ttft_ms", stats.ttft_ms},
                    {"total_ms", stats.total_ms},
                    {"prefill_tok_per_s", stats.prefill_tok_per_s()},
                    {"decode_tok_per_s", stats.decode_tok_per_s()},
                    {"text", text}};
    });
}

std::string WebSession::eval_text(const std::string& text) {
    return guarded([&] {
        if (!state_->has_model()) throw Error("no model is open");
        const std::vector<int> ids = state_->tokenizer.encode(text);
        if (ids.size() < 2) throw Error("the text must encode to at least 2 tokens");
        std::vector<int32_t> tokens(ids.begin(), ids.end());
        require_fits(estimate_scoring(state_->config(), static_cast<int>(tokens.size())),
                     available_memory_budget(), "the text or the model is too large for this page");
        const std::vector<double> logprobs = next_token_logprobs(state_->weights(), tokens);
        double nll = 0;
        for (double lp : logprobs) nll -= lp;
        const std::string predicted = state_->tokenizer.decode({ids.begin() + 1, ids.end()});
        return json{
            {"tokens", logprobs.size()},
            {"cross_entropy", nll / static_cast<double>(logprobs.size())},
            {"bits_per_byte", predicted.empty() ? 0.0 : nll / std::log(2.0) / predicted.size()},
            {"logprobs", logprobs}};
    });
}

std::string WebSession::train_start(const std::string& options_text,
                                    const std::string& corpus_path) {
    return guarded([&] {
        const json options = parse_options(options_text);
        TrainOptions opt;
        ModelConfig& m = opt.model;
        m = preset_config(option<std::string>(options, "preset", "tiny"),
                          parse_arch(option<std::string>(options, "arch", "gpt")));
        m.vocab = 256;  // the page trains byte-level models
        const int preset_d_model = m.d_model;
        m.d_model = option(options, "d_model", m.d_model);
        m.layers = option(options, "layers", m.layers);
        m.heads = option(options, "heads", m.heads);
        m.kv_heads = option(options, "kv_heads", m.kv_heads);
        // As the CLI does: a Llama preset's SwiGLU width follows a changed d_model.
        if (m.is_llama() && m.d_model != preset_d_model) m.d_mlp = swiglu_width(m.d_model);
        m.d_mlp = option(options, "d_mlp", m.d_mlp);
        m.ctx = option(options, "ctx", m.ctx);
        m.experts = option(options, "experts", m.experts);
        m.topk = option(options, "topk", m.experts > 1 ? std::min(2, m.experts) : 1);
        m.validate();
        opt.steps = option<int64_t>(options, "steps", 200);
        opt.batch = option(options, "batch", 16);
        opt.schedule.max_lr = option(options, "lr", 3e-3f);
        opt.schedule.min_lr = option(options, "min_lr", opt.schedule.max_lr / 10);
        opt.schedule.warmup =
            option<int64_t>(options, "warmup", std::min<int64_t>(500, opt.steps / 10));
        opt.schedule.total_steps = opt.steps;
        opt.val_split = option(options, "val_split", 0.0);
        const int64_t val_every = option<int64_t>(options, "val_every", 0);
        if (val_every < 0) throw Error("val_every must be >= 0 (0: validate at the end only)");
        opt.seed = option<uint64_t>(options, "seed", 1337);
        opt.validate();

        TrainingMemoryPlan plan;
        plan.batch = opt.batch;
        plan.corpus_tokens = static_cast<double>(file_bytes(corpus_path));
        require_fits(estimate_training(m, plan), available_memory_budget(),
                     "the model is too large to train in this page: fewer layers, a smaller "
                     "d_model, context or batch");
        auto corpus = std::make_unique<Corpus>(Corpus::load(corpus_path, Tokenizer::bytes()));
        auto trainer = std::make_unique<Trainer>(opt, *corpus);
        state_->opened.reset();
        state_->trainer = std::move(trainer);
        state_->corpus = std::move(corpus);
        state_->tokenizer = Tokenizer::bytes();
        state_->val_every = val_every;
        return json{{"params", m.total_params()},
                    {"active_params", m.active_params()},
                    {"steps", opt.steps},
                    {"batch", opt.batch},
                    {"ctx", m.ctx},
                    {"tokens", state_->corpus->tokens.size()},
                    {"describe", m.describe()}};
    });
}

std::string WebSession::train_step(int steps) {
    return guarded([&] {
        Trainer* trainer = state_->trainer.get();
        if (!trainer) throw Error("no training has started (train_start first)");
        if (steps < 1) throw Error("train_step needs at least 1 step");
        const TrainOptions& opt = trainer->options();
        StepStats last;
        int taken = 0;
        for (; taken < steps && trainer->steps_done() < opt.steps; ++taken) {
            last = trainer->step();
            if (!std::isfinite(last.loss))
                throw Error("the loss is " + std::to_string(last.loss) + " at step " +
                            std::to_string(last.step + 1) + ": lower the learning rate");
        }
        const bool done = trainer->steps_done() >= opt.steps;
        json result = {{"step", trainer->steps_done()}, {"steps", opt.steps}, {"done", done}};
        if (taken > 0) {
            result["loss"] = last.loss;
            result["ce"] = last.ce;
            result["aux"] = last.aux;
            result["lr"] = last.lr;
            result["ms_per_step"] = last.seconds * 1e3;
            result["tokens_per_s"] =
                last.seconds > 0 ? static_cast<double>(trainer->tokens_per_step()) / last.seconds
                                 : 0.0;
            json load = json::array();
            for (int l : moe_layer_indices(opt.model)) load.push_back(trainer->expert_load(l));
            result["expert_load"] = std::move(load);
        }
        const int64_t every = state_->val_every;
        const bool validate =
            trainer->has_validation() &&
            (done || (every > 0 && taken > 0 && trainer->steps_done() % every == 0));
        result["val_loss"] = validate ? json(trainer->validate().ce) : json(nullptr);
        return result;
    });
}

std::string WebSession::save_model(const std::string& path, const std::string& options_text) {
    return guarded([&] {
        if (!state_->has_model()) throw Error("no model is open");
        const json options = parse_options(options_text);
        SaveOptions save;
        set_tokenizer(save, state_->tokenizer);
        const std::string dtype = option<std::string>(options, "dtype", "");
        Trainer* trainer = state_->trainer.get();
        if (trainer && (dtype.empty() || dtype == "f32")) {
            const bool optimizer = option(options, "optimizer", true);
            const Trainer::FullState full = trainer->gather_full_state(optimizer);
            save.include_optimizer = optimizer;
            save_model_file(path, trainer->options().model, full.weights, full.adam_m, full.adam_v,
                            trainer->state(), save);
        } else {
            // An inference copy: the weights in their type (or `dtype`), no optimizer.
            const ModelWeights weights = state_->weights();
            save.dtype = dtype.empty() ? weights.main_dtype() : parse_weight_dtype(dtype);
            save.include_optimizer = false;
            save.include_training_state = false;
            save_model_file(path, weights, trainer ? trainer->state() : TrainingState{}, save);
        }
        return json{{"path", path}, {"bytes", file_bytes(path)}, {"dtype", dtype_name(save.dtype)}};
    });
}

}  // namespace tinygpt
