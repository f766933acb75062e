// Loading a Hugging Face checkpoint: wall time and peak resident memory against the checkpoint's
// size on disk and the f32 model it becomes. Make a ~1 GB bf16 qwen3_moe checkpoint with
//
//   /usr/bin/python3 tools/hf_reference.py --big /tmp/big-qwen3moe --size-mb 1000
//   ./build/bench/bench_hf_import /tmp/big-qwen3moe [runs]
//
// Each run is a fresh process (peak RSS is per process), so the program re-executes itself.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "hf/hf_model.h"
#include "util/sysinfo.h"
#include "util/timer.h"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s HF_DIR [runs]\n", argv[0]);
        return 2;
    }
    if (argc == 3 && std::string(argv[2]) == "--once") {  // one measured load
        tinygpt::Timer t;
        const tinygpt::hf::HfModel m = tinygpt::hf::load_hf_model(argv[1]);
        const double seconds = t.seconds();
        std::printf("%.3f %.0f %.0f %.0f\n", seconds, tinygpt::peak_rss_mb(),
                    m.checkpoint_bytes / 1e6, 4.0 * m.weights.size() / 1e6);
        return 0;
    }
    const int runs = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
    std::vector<double> secs, rss;
    double disk = 0, f32 = 0;
    for (int r = 0; r < runs; ++r) {
        const std::string cmd = std::string(argv[0]) + " " + argv[1] + " --once";
        FILE* p = popen(cmd.c_str(), "r");
        double s = 0, m = 0;
        if (!p || std::fscanf(p, "%lf %lf %lf %lf", &s, &m, &disk, &f32) != 4) {
            std::fprintf(stderr, "run %d failed\n", r);
            return 1;
        }
        pclose(p);
        secs.push_back(s);
        rss.push_back(m);
    }
    std::sort(secs.begin(), secs.end());
    std::sort(rss.begin(), rss.end());
    std::printf("HF import of %s (%d runs, fresh process each, page cache warm after the first)\n",
                argv[1], runs);
    std::printf("  checkpoint on disk   %.0f MB\n  f32 model in memory  %.0f MB\n", disk, f32);
    std::printf("  load time            %.2f s median (%.0f MB/s of checkpoint)\n",
                secs[secs.size() / 2], disk / secs[secs.size() / 2]);
    std::printf(
        "  peak RSS             %.0f MB median = %.2f × the checkpoint, %.2f × the f32 model\n",
        rss[rss.size() / 2], rss[rss.size() / 2] / disk, rss[rss.size() / 2] / f32);
    return 0;
}
