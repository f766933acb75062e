// GGUF files in their stored types: the import keeps F32/F16/BF16/Q8_0 (llama's q/k rows moved as
// whole rows, Q8_0 blocks included) and equals, widened, the f32 import bit for bit; mixed types
// within a fused group become f32; a Q8_0 model exports to Q8_0 with the bytes it has (the same
// bytes as llama-quantize's file it came from), through a .tinygpt q8_0 copy too; tensors already
// in the export type are copied, the others converted exactly as from f32.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "gguf/gguf_model.h"
#include "io/gguf_file.h"
#include "io/model_file.h"
#include "load/model_source.h"
#include "model/params.h"
#include "scratch_dir.h"
#include "util/error.h"

namespace tinygpt {
namespace {

namespace fs = std::filesystem;
using gguf::GgufArch;

const fs::path kData = fs::path(TINYGPT_TEST_DATA) / "gguf";
const std::string kF32 = (kData / "moe_f32.gguf").string();
const std::string kQ8 = (kData / "moe_q8_0_llama_quantize.gguf").string();

class GgufTyped : public ::testing::Test {
  protected:
    std::string path(const std::string& name) const { return scratch_.file(name); }
    test::ScratchDir scratch_{"gguf-typed"};
    const fs::path& dir_ = scratch_.path();
};

// The f32 import as tinygpt did it before typed weights: each tensor widened to f32, llama's q/k
// rows unpermuted, its parts copied to their ParameterLayout offsets.
std::vector<float> f32_import(const std::string& file_path) {
    const io::GgufFile file = io::GgufFile::open(file_path);
    const GgufArch arch =
        gguf::parse_gguf_arch(file.at("general.architecture").as_string("architecture"));
    const ModelConfig cfg = gguf::config_from_gguf(file, arch);
    const ParameterLayout layout(cfg);
    std::vector<float> w(layout.total(), 0.0f), values, moved;
    for (const gguf::GgufTensorSpec& spec : gguf::gguf_tensor_specs(arch, cfg)) {
        const io::GgufTensor& t = *file.find_tensor(spec.name);
        values.resize(static_cast<size_t>(t.numel()));
        io::gguf_tensor_to_f32(t, values.data());
        const float* src = values.data();
        if (spec.permute_heads > 0) {
            const int64_t rows = spec.ne.size() >= 2 ? spec.ne[1] : spec.ne[0];
            const int64_t cols = spec.ne.size() >= 2 ? spec.ne[0] : 1;
            moved.resize(values.size());
            gguf::unpermute_rows_from_llama(values.data(), moved.data(), spec.permute_heads,
                                            static_cast<int>(rows / spec.permute_heads), cols);
            src = moved.data();
        }
        const size_t block = values.size() / spec.parts.size();
        for (size_t k = 0; k < spec.parts.size(); ++k)
            std::memcpy(w.data() + layout.at(spec.parts[k]).offset, src + k * block, block * 4);
    }
    return w;
}

// Typed import == f32 import widened, and (check_types) every tensor in its GGUF tensor's type
// (norms and the router in f32).
void expect_typed_import(const std::string& file_path, bool check_types = true) {
    SCOPED_TRACE(file_path);
    const gguf::GgufModel m = gguf::load_gguf_model(file_path);
    const std::vector<float> want = f32_import(file_path);
    const std::vector<float> got = m.weights.to_f32();
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * 4), 0);
    const io::GgufFile file = io::GgufFile::open(file_path);
    const ParameterLayout& layout = m.weights.layout();
    for (const gguf::GgufTensorSpec& spec : gguf::gguf_tensor_specs(m.arch, m.config)) {
        const io::GgufTensor& t = *file.find_tensor(spec.name);
        for (size_t k = 0; k < spec.parts.size(); ++k) {
            const ParamInfo& p = layout.at(spec.parts[k]);
            const size_t i = static_cast<size_t>(&p - layout.entries().data());
            const TensorView& v = m.weights.view(i);
            if (always_f32(p)) {
                EXPECT_EQ(v.dtype, WeightDtype::F32) << p.name;
                continue;
            }
            if (!check_types) continue;
            EXPECT_EQ(v.dtype, gguf::weight_dtype_of(t.type)) << p.name << " from " << spec.name;
            if (spec.permute_heads == 0 && v.dtype == gguf::weight_dtype_of(t.type)) {
                const size_t bytes = dtype_tensor_bytes(v.dtype, p.shape);
                EXPECT_EQ(std::memcmp(v.data, t.data + k * bytes, bytes), 0) << p.name;
            }
        }
    }
}

TEST_F(GgufTyped, ImportKeepsEachTypeAndEqualsTheF32ImportWidened) {
    expect_typed_import(kF32);
    expect_typed_import(kQ8);
    const gguf::GgufModel q8 = gguf::load_gguf_model(kQ8);
    EXPECT_EQ(q8.weights.main_dtype(), WeightDtype::Q8_0);
    EXPECT_EQ(q8.types, "F32+Q8_0");
    // Every type through our own export of both files: F16/BF16 of the F32 model (q/k rows
    // permuted), and GPT-2 (q|k|v one GGUF tensor) at each type.
    const OpenedModel f32 = open_model(kF32);
    for (WeightDtype dtype : {WeightDtype::F16, WeightDtype::BF16, WeightDtype::Q8_0}) {
        const std::string out = path(std::string("m.") + dtype_name(dtype) + ".gguf");
        gguf::save_gguf_model(out, f32.weights, f32.tokenizer, dtype, "t");
        expect_typed_import(out);
        ModelConfig gpt;
        gpt.vocab = 256;
        gpt.ctx = 32;
        gpt.layers = 2;
        gpt.d_model = 32;
        gpt.heads = 2;
        gpt.d_mlp = 64;
        const ParameterLayout layout(gpt);
        std::vector<float> w(layout.total(), 0.0f);
        init_parameters(layout, w.data(), 21);
        const std::string g = path(std::string("gpt.") + dtype_name(dtype) + ".gguf");
        gguf::save_gguf_model(g, gpt, w.data(), Tokenizer::bytes(), dtype, "t");
        expect_typed_import(g);
    }
}

// `from` rewritten with `name` stored as `type` (its values through f32).
void retype(const std::string& from, const std::string& to,
            const std::vector<std::pair<std::string, io::GgmlType>>& changes) {
    const io::GgufFile f = io::GgufFile::open(from);
    std::vector<io::GgufTensorToWrite> tensors;
    for (const io::GgufTensor& t : f.tensors()) {
        io::GgmlType type = t.type;
        for (const auto& [name, new_type] : changes)
            if (name == t.name) type = new_type;
        const io::GgufTensor copy = t;
        tensors.push_back(
            {t.name, t.ne, type, [copy](float* dst) { io::gguf_tensor_to_f32(copy, dst); }});
    }
    io::write_gguf(to, f.metadata(), tensors);
}

TEST_F(GgufTyped, AFusedGroupOfMixedTypesAndNarrowNormsBecomeF32) {
    // k in F16 while q and v are Q8_0; the attention norm in F16.
    retype(kQ8, path("mixed.gguf"),
           {{"blk.0.attn_k.weight", io::GgmlType::F16},
            {"blk.0.attn_norm.weight", io::GgmlType::F16}});
    expect_typed_import(path("mixed.gguf"), /*check_types=*/false);  // checked below
    const gguf::GgufModel m = gguf::load_gguf_model(path("mixed.gguf"));
    const ParameterLayout& layout = m.weights.layout();
    const auto type_of = [&](TensorId id) {
        return m.weights.view(static_cast<size_t>(&layout.at(id) - layout.entries().data())).dtype;
    };
    EXPECT_EQ(type_of(TensorId{TensorRole::AttnQ, 0}), WeightDtype::F32);
    EXPECT_EQ(type_of(TensorId{TensorRole::AttnK, 0}), WeightDtype::F32);
    EXPECT_EQ(type_of(TensorId{TensorRole::AttnV, 0}), WeightDtype::F32);
    EXPECT_EQ(type_of(TensorId{TensorRole::AttnO, 0}), WeightDtype::Q8_0);
    EXPECT_EQ(type_of(TensorId{TensorRole::AttnNorm, 0}), WeightDtype::F32);
    EXPECT_EQ(type_of(TensorId{TensorRole::FfnGate, 0, 0}), WeightDtype::Q8_0);
}

bool same_tensors(const std::string& a_path, const std::string& b_path) {
    const io::GgufFile a = io::GgufFile::open(a_path), b = io::GgufFile::open(b_path);
    EXPECT_EQ(a.tensors().size(), b.tensors().size());
    bool same = a.tensors().size() == b.tensors().size();
    for (const io::GgufTensor& t : b.tensors()) {
        const io::GgufTensor* o = a.find_tensor(t.name);
        if (!o || o->type != t.type || o->ne != t.ne || o->bytes != t.bytes ||
            std::memcmp(o->data, t.data, t.bytes) != 0) {
            ADD_FAILURE() << t.name << " differs";
            same = false;
        }
    }
    return same;
}

TEST_F(GgufTyped, AQ8_0ModelExportsToQ8_0WithItsOwnBytes) {
    // llama-quantize's file in, Q8_0 out: every tensor the same type and bytes, no requantising.
    const OpenedModel m = open_model(kQ8);
    EXPECT_EQ(m.format.find("GGUF v3 llama (F32+Q8_0"), 0u) << m.format;
    gguf::save_gguf_model(path("again.gguf"), m.weights, m.tokenizer, WeightDtype::Q8_0, "t");
    EXPECT_TRUE(same_tensors(path("again.gguf"), kQ8));
    EXPECT_EQ(io::GgufFile::open(path("again.gguf")).at("general.file_type").as_uint("file_type"),
              io::GgufFile::open(kQ8).at("general.file_type").as_uint("file_type"));
    // Through a .tinygpt q8_0 copy: the same bytes again.
    SaveOptions options;
    options.dtype = WeightDtype::Q8_0;
    options.include_optimizer = false;
    save_model_file(path("m.tinygpt"), m.weights, TrainingState{}, options);
    const OpenedModel t = open_model(path("m.tinygpt"));
    EXPECT_EQ(t.format, "tinygpt v3 (q8_0+f32)");
    gguf::save_gguf_model(path("back.gguf"), t.weights, t.tokenizer, WeightDtype::Q8_0, "t");
    EXPECT_TRUE(same_tensors(path("back.gguf"), kQ8));
    EXPECT_FALSE(t.file->has_f32_copy());  // no f32 anywhere on the way
}

TEST_F(GgufTyped, TypedExportEqualsTheExportOfItsF32Values) {
    // Tensors already in the type are copied, the others converted: for f16/bf16 models that is
    // exactly what converting their (exactly widened) f32 values gives, file for file, with dense
    // blocks written as padded and scaled experts (converted) in the same files.
    ModelConfig c;
    c.arch = Arch::Llama;
    c.vocab = 256;
    c.ctx = 32;
    c.layers = 3;
    c.d_model = 64;
    c.heads = 4;
    c.kv_heads = 2;
    c.d_mlp = 80;
    c.experts = 4;
    c.topk = 2;
    c.moe_ffn = 64;
    c.norm_topk = NormTopk::Off;
    c.shared_ffn = 32;
    c.moe_layers = {0, 1, 1};  // a dense first block: emulated as scaled, padded experts
    c.validate();
    const ParameterLayout layout(c);
    std::vector<float> w(layout.total(), 0.0f);
    init_parameters(layout, w.data(), 22);
    const ModelWeights f32 = ModelWeights::from_f32(c, w.data());
    for (WeightDtype dtype : {WeightDtype::F16, WeightDtype::BF16}) {
        SCOPED_TRACE(dtype_name(dtype));
        const ModelWeights typed = f32.converted(dtype);
        const std::vector<float> widened = typed.to_f32();
        gguf::save_gguf_model(path("typed.gguf"), typed, Tokenizer::bytes(), dtype, "t");
        gguf::save_gguf_model(path("f32.gguf"), c, widened.data(), Tokenizer::bytes(), dtype, "t");
        std::ifstream a(path("typed.gguf"), std::ios::binary),
            b(path("f32.gguf"), std::ios::binary);
        const std::string x((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>());
        const std::string y((std::istreambuf_iterator<char>(b)), std::istreambuf_iterator<char>());
        EXPECT_TRUE(x == y) << "the files differ";
    }
    // A q8_0 model exported as f16: every tensor converted from its dequantised values.
    const ModelWeights q8 = f32.converted(WeightDtype::Q8_0);
    const std::vector<float> dq = q8.to_f32();
    gguf::save_gguf_model(path("q8-as-f16.gguf"), q8, Tokenizer::bytes(), WeightDtype::F16, "t");
    gguf::save_gguf_model(path("dq-as-f16.gguf"), c, dq.data(), Tokenizer::bytes(),
                          WeightDtype::F16, "t");
    EXPECT_TRUE(same_tensors(path("q8-as-f16.gguf"), path("dq-as-f16.gguf")));
}

}  // namespace
}  // namespace tinygpt
