// The WebAssembly module's JavaScript interface (embind): one WebSession per module, its
// functions exported under the same names with JS strings in and out (src/web/web_session.h
// documents the JSON). Built only by the WebAssembly build (cmake/web.cmake).
// From JavaScript:
//  - embind checks the number of arguments: pass every one (generate's onToken may be null;
//    save_model's options may be "").
//  - In Node, pass the module's bytes: createTinygpt({wasmBinary:
//  fs.readFileSync(".../tinygpt.wasm")}).
//    Emscripten 3.1.6 otherwise calls Node's fetch() with a file path, which fails.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <string>

#include "util/sysinfo.h"
#include "web/web_session.h"

namespace {

tinygpt::WebSession& session() {
    static tinygpt::WebSession the_session;
    return the_session;
}

std::string open_model(const std::string& path) {
    return session().open_model(path);
}
std::string model_info() {
    return session().model_info();
}

// on_token(tokenJson) is called synchronously for every token; only an explicit `false` stops.
std::string generate(const std::string& prompt, const std::string& options,
                     emscripten::val on_token) {
    const bool has_callback = on_token.typeOf().as<std::string>() == "function";
    return session().generate(prompt, options, [&](const std::string& token) {
        if (!has_callback) return true;
        return !on_token(token).strictlyEquals(emscripten::val(false));
    });
}

std::string eval_text(const std::string& text) {
    return session().eval_text(text);
}
std::string train_start(const std::string& options, const std::string& corpus_path) {
    return session().train_start(options, corpus_path);
}
std::string train_step(int steps) {
    return session().train_step(steps);
}
std::string save_model(const std::string& path, const std::string& options) {
    return session().save_model(path, options);
}
// tinygpt.js runs on the calling thread (threads() is 1); tinygpt-threads.js on a pool of
// WebAssembly pthreads, as many as the cores by default (util/parallel/thread_pool.cpp).
void set_threads(int n) {
    tinygpt::set_num_threads(n);
}
int threads() {
    return tinygpt::num_threads();
}

}  // namespace

EMSCRIPTEN_BINDINGS(tinygpt) {
    emscripten::function("open_model", &open_model);
    emscripten::function("model_info", &model_info);
    emscripten::function("generate", &generate);
    emscripten::function("eval_text", &eval_text);
    emscripten::function("train_start", &train_start);
    emscripten::function("train_step", &train_step);
    emscripten::function("save_model", &save_model);
    emscripten::function("set_threads", &set_threads);
    emscripten::function("threads", &threads);
}
