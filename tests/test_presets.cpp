#include <gtest/gtest.h>

#include "model/config.h"
#include "model/params.h"
#include "util/error.h"

namespace tinygpt {

TEST(Presets, ParameterCountsMatchTheOriginal) {
    ModelConfig tiny = preset_config("tiny");
    EXPECT_EQ(tiny.total_params(), 842496);
    tiny.experts = 4;
    EXPECT_EQ(tiny.total_params(), 2425088);
    tiny.experts = 8;
    EXPECT_EQ(tiny.total_params(), 4534528);
    // original-tinygpt.md §2.1, dense column.
    EXPECT_EQ(preset_config("small").total_params(), 2767872);
    EXPECT_EQ(preset_config("huge").total_params(), 9608704);
    EXPECT_EQ(preset_config("mega").total_params(), 76313600);
    EXPECT_EQ(preset_config("behemoth").total_params(), 404391936);
    EXPECT_EQ(preset_config("titan").total_params(), 1361882112);
    ModelConfig huge = preset_config("huge");
    huge.experts = 8;
    EXPECT_EQ(huge.total_params(), 53780992);
}

TEST(Presets, LayoutAgreesWithTheFormula) {
    ModelConfig cfg = preset_config("tiny");
    cfg.experts = 4;
    cfg.topk = 2;
    const ParameterLayout layout(cfg);
    EXPECT_EQ(static_cast<int64_t>(layout.count()), cfg.total_params());
    EXPECT_GE(layout.total(), layout.count());
    for (const ParamInfo& p : layout.entries()) {  // 64-byte aligned, except k/v after q
        if (p.name.find("k_proj") == std::string::npos &&
            p.name.find("v_proj") == std::string::npos) {
            EXPECT_EQ(p.offset % 16, 0u) << p.name;
        }
    }
    EXPECT_EQ(layout.manifest_order().size(), layout.entries().size());
    EXPECT_EQ(layout.at("blocks.3.moe.experts.1.fc_in.weight").shape,
              (std::vector<int64_t>{512, 128}));
    // q, k, v of a block are adjacent so one GEMM computes all three.
    EXPECT_EQ(layout.at("blocks.2.attn.k_proj.weight").offset,
              layout.at("blocks.2.attn.q_proj.weight").offset + 128 * 128);
    EXPECT_EQ(layout.at("blocks.2.attn.v_proj.bias").offset,
              layout.at("blocks.2.attn.q_proj.bias").offset + 2 * 128);
    // Active parameters: all but the (E - K) unused experts of each block.
    EXPECT_EQ(cfg.active_params(), cfg.total_params() - 4 * 2 * cfg.expert_params());
}

TEST(Presets, UnknownPresetAndBadShapesAreErrors) {
    EXPECT_THROW(preset_config("gigantic"), Error);
    ModelConfig cfg = preset_config("tiny");
    cfg.heads = 3;  // 128 % 3 != 0
    EXPECT_THROW(cfg.validate(), Error);
    cfg = preset_config("tiny");
    cfg.topk = 0;
    EXPECT_THROW(cfg.validate(), Error);
    cfg = preset_config("tiny");
    cfg.experts = 0;
    EXPECT_THROW(cfg.validate(), Error);
    cfg = preset_config("tiny");
    cfg.layers = -1;
    EXPECT_THROW(cfg.validate(), Error);
}

}  // namespace tinygpt
