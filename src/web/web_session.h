// What the browser page asks of the engine (through src/web/web_bindings.cpp, a Web Worker and
// web/worker.js): open a model, describe it, generate with the routing of every token, score a
// text, train a small model step by step and save it. Plain C++ with JSON strings in and out, so
// that the native test suite checks the same code the WebAssembly module runs
// (tests/test_web_session.cpp). No function throws: a failure returns {"error": "message"}.
#pragma once
#include <functional>
#include <memory>
#include <string>

namespace tinygpt {

class WebSession {
  public:
    WebSession();
    ~WebSession();
    WebSession(const WebSession&) = delete;
    WebSession& operator=(const WebSession&) = delete;

    // Opens any model the CLI opens (.tinygpt v1/v2/v3, GGUF, a Hugging Face directory) and
    // makes it the current one. Returns model_info().
    std::string open_model(const std::string& path);
    // {"format","family","describe","params","active_params","weight_bytes","dtype","config":{…},
    //  "moe_layers":[…],"tensors":[{"name","dtype","shape"}],"tokenizer","vocab","load_ms"}
    std::string model_info() const;

    // Called for every generated token with {"id","text","layers":[[[expert,gate],…K],…one per
    // MoE layer]}; returning false stops the generation.
    using TokenCallback = std::function<bool(const std::string& token_json)>;
    // options: {"tokens","temperature","top_k","top_p","seed","keep","stop_at_context"}.
    // Returns {"prompt_tokens","generated","ttft_ms","total_ms","prefill_tok_per_s",
    // "decode_tok_per_s","slides","text"}.
    std::string generate(const std::string& prompt, const std::string& options,
                         const TokenCallback& on_token);

    // {"tokens","cross_entropy","bits_per_byte","logprobs":[…]} of the text under the current
    // model (it must fit the context).
    std::string eval_text(const std::string& text);

    // A fresh model (options: "arch","preset","d_model","layers","heads","kv_heads","d_mlp",
    // "ctx","experts","topk","steps","batch","lr","min_lr","warmup","val_split","val_every","seed")
    // and trainer on the text file at corpus_path (byte vocabulary). Returns {"params",
    // "active_params","steps","batch","ctx","tokens","describe"}.
    std::string train_start(const std::string& options, const std::string& corpus_path);
    // Runs up to `steps` optimizer steps → {"step","steps","loss","ce","aux","lr","ms_per_step",
    // "tokens_per_s","val_loss","done","expert_load":[[…]…]}; val_loss (with a val_split) at
    // every val_every-th step and at the end, null otherwise. The trained model becomes the
    // current one (generate, eval_text, save_model use it).
    std::string train_step(int steps);
    // Writes the current model as a .tinygpt v3 file. options: {"dtype": "f32"|"bf16"|"f16"|
    // "q8_0" (default: a trained model f32, an opened one its own type), "optimizer": true|false
    // (a trained f32 model: its AdamW moments and training state, so that `tinygpt train
    // --resume` continues it exactly; default true; 3× the bytes of the weights)}.
    // Returns {"bytes","path","dtype"}.
    std::string save_model(const std::string& path, const std::string& options);

  private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace tinygpt
