#include "cli/run_weights.h"

#include "util/error.h"

namespace tinygpt::cli {

void add_run_dtype_flag(CLI::App* cmd, std::string& value) {
    cmd->add_option("--dtype", value,
                    "Run the weights as f32, bf16, f16 or q8_0, converted when loaded (default: "
                    "as stored)")
        ->check([](const std::string& s) {
            try {
                parse_weight_dtype(s);
                return std::string();
            } catch (const Error& e) {
                return std::string(e.what());
            }
        });
}

double typed_weight_bytes(const OpenedModel& model, const std::string& dtype) {
    const bool convert =
        !dtype.empty() && !model.weights.has_stored_types(parse_weight_dtype(dtype));
    const bool f32 = convert ? parse_weight_dtype(dtype) == WeightDtype::F32
                             : model.weights.f32_base() != nullptr;
    if (f32) return 0;
    const double stored = static_cast<double>(model.weights.stored_bytes());
    if (!convert) return stored;
    return stored + static_cast<double>(
                        ModelWeights::stored_bytes_for(model.config, parse_weight_dtype(dtype)));
}

ModelWeights run_weights(const OpenedModel& model, const std::string& dtype) {
    if (dtype.empty()) return model.weights;
    const WeightDtype type = parse_weight_dtype(dtype);
    if (model.weights.has_stored_types(type)) return model.weights;
    return model.weights.converted(type);
}

}  // namespace tinygpt::cli
