// Two WebAssembly builds side by side in Node: decode tok/s and training ms/step of the same
// module variant from BUILD_A and BUILD_B (folders as scripts/build-web.sh writes build-web/), in
// interleaved rounds, each measurement in a fresh Node process. Prints each build's medians and
// the per-round B/A ratios (speed: > 1 means B is faster) with their median, which is what to
// read on a noisy machine. Made for build settings that should not change speed (e.g. the link's
// optimisation level; BENCHMARKS.md, "The CI run").
//   node bench/compare_web_builds.mjs BUILD_A BUILD_B NATIVE_TINYGPT [--rounds 8]
//        [--module tinygpt|tinygpt-threads] [--cpu N]
// --cpu N: every measurement pinned to CPU N (taskset), for the one-thread module.
// Workloads: a llama MoE (4 layers, d_model 128, 8 experts top-2, ctx 128; made by the native
// CLI, 2 steps) decoding 200 greedy tokens past its context after "ROMEO:"; training a gpt MoE
// (tiny preset shape, 4 experts top-2, ctx 96, batch 16) for 10 steps after 2 of warm-up.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { corpusSlice, loadModule, median, run, splitArgs, workDir } from "../tools/web-check/lib.mjs";

const DECODE_TOKENS = 200, TRAIN_STEPS = 10, TRAIN_WARMUP = 2;

// A child: one measurement of one build, printed as JSON.
async function measure(buildDir, name, model, corpus) {
  const M = await loadModule(buildDir, name);
  const call = (fn, ...a) => {
    const answer = JSON.parse(M[fn](...a));
    if (answer.error) throw new Error(`${fn}: ${answer.error}`);
    return answer;
  };
  M.FS.writeFile("/m.tinygpt", readFileSync(model));
  M.FS.writeFile("/corpus.txt", readFileSync(corpus));
  call("open_model", "/m.tinygpt");
  call("generate", "ROMEO:", JSON.stringify({ tokens: 16, temperature: 0 }), () => true);
  let start = performance.now();
  const stats = call("generate", "ROMEO:", JSON.stringify({ tokens: DECODE_TOKENS, temperature: 0 }), () => true);
  const decode = stats.generated / ((performance.now() - start) / 1000);
  call("train_start", JSON.stringify({ arch: "gpt", d_model: 128, layers: 4, heads: 4, ctx: 96, experts: 4,
    topk: 2, steps: TRAIN_WARMUP + TRAIN_STEPS, batch: 16, lr: 3e-3, seed: 1 }), "/corpus.txt");
  call("train_step", TRAIN_WARMUP);
  start = performance.now();
  call("train_step", TRAIN_STEPS);
  const trainMs = (performance.now() - start) / TRAIN_STEPS;
  return { decode, trainMs };
}

const self = fileURLToPath(import.meta.url);
if (process.argv[2] === "--child") {
  const [buildDir, name, model, corpus] = process.argv.slice(3);
  console.log(JSON.stringify(await measure(buildDir, name, model, corpus)));
  process.exit(0);  // the threaded module's workers would keep the process alive
}

const USAGE = "node bench/compare_web_builds.mjs BUILD_A BUILD_B NATIVE_TINYGPT [--rounds 8] [--module tinygpt] [--cpu N]";
const { positional, option } = splitArgs();
const rounds = Number(option("--rounds", "8"));
const name = option("--module", "tinygpt");
const cpu = option("--cpu", "");
if (positional.length !== 3 || !(rounds >= 1) || !["tinygpt", "tinygpt-threads"].includes(name)) {
  console.error(`usage: ${USAGE}`);
  process.exit(2);
}
const [buildA, buildB, native] = positional.map((p) => resolve(p));
for (const path of [join(buildA, `${name}.js`), join(buildB, `${name}.js`), native]) {
  if (!existsSync(path)) {
    console.error(`${path} does not exist`);
    process.exit(2);
  }
}
const work = workDir("", "tinygpt-web-builds-");
const corpus = corpusSlice(work, 30000);
const model = join(work, "m.tinygpt");
run(native, ["train", "--arch", "llama", "--layers", "4", "--d-model", "128", "--heads", "4", "--kv-heads", "2",
  "--moe-experts", "8", "--moe-topk", "2", "--ctx", "128", "--steps", "2", "--sample-every", "0", "--out", model]);

function child(buildDir) {
  const argv = [self, "--child", buildDir, name, model, corpus];
  const [command, full] = cpu ? ["taskset", ["-c", cpu, process.execPath, ...argv]] : [process.execPath, argv];
  const r = spawnSync(command, full, { encoding: "utf8", timeout: 300000 });
  if (r.status !== 0) throw new Error(`${buildDir}: exit ${r.status}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop());
}

const results = { A: [], B: [] };
for (let round = 1; round <= rounds; ++round) {
  results.A.push(child(buildA));
  results.B.push(child(buildB));
  console.error(`round ${round}/${rounds} done`);
}

const decodeRatio = results.A.map((a, i) => results.B[i].decode / a.decode);
const trainRatio = results.A.map((a, i) => a.trainMs / results.B[i].trainMs);
const fmt = (xs) => xs.map((x) => x.toFixed(2)).join(" ");
console.log(`module ${name}, ${rounds} interleaved rounds${cpu ? `, pinned to CPU ${cpu}` : ""}`);
console.log(`A = ${buildA}\nB = ${buildB}\n`);
console.log("| workload | A (median) | B (median) | B/A speed per round | median |");
console.log("|---|---:|---:|---|---:|");
console.log(`| decode (tok/s) | ${median(results.A.map((r) => r.decode)).toFixed(0)} | ${median(results.B.map((r) => r.decode)).toFixed(0)} | ${fmt(decodeRatio)} | **${median(decodeRatio).toFixed(3)}** |`);
console.log(`| training (ms/step) | ${median(results.A.map((r) => r.trainMs)).toFixed(1)} | ${median(results.B.map((r) => r.trainMs)).toFixed(1)} | ${fmt(trainRatio)} | **${median(trainRatio).toFixed(3)}** |`);
