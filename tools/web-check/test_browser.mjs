// The page in headless Chromium (puppeteer-core driving Debian's chromium), by its URL mode, on
// small models trained natively here: served with BUILD_WEB_DIR from a static server on
// 127.0.0.1, each run waits for body[data-state] = done or error.
//  - ?model=URL&prompt=P&tokens=40&temperature=0&run=1: #output equals native
//    `sample --temperature 0` (text after the prompt); #routing has one entry per token with
//    K experts and gates in (0, 1] per MoE layer; a gpt MoE .tinygpt and a llama MoE GGUF;
//  - ?train=URL&steps=20&experts=4&topk=2&run=1: #training has 20 losses and the loss falls, and
//    the model the page offers for download opens in the native `inspect`;
//  - by hand: a file from the file input, Generate, Stop, Generate again (greedy = native);
//  - a missing or corrupt model: state "error" with the message in #output;
//  - the page requests nothing outside the test server;
//  - served cross-origin isolated (the two headers of docs/WEB.md): the page runs the threaded
//    build on as many threads as the browser has cores, and generates and trains the same.
//   node tools/web-check/test_browser.mjs BUILD_WEB_DIR NATIVE_TINYGPT [--chromium PATH] [--keep DIR]
//        [--firefox PATH]   (the same checks in Firefox instead, e.g. Debian's /usr/bin/firefox-esr)
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { PROMPT, checker, corpusSlice, launchBrowser, makeFixtures, nativeInspect, nativeSample,
  parseArgs, routingProblem, runPage, serve, workDir } from "./lib.mjs";

const args = parseArgs("node test_browser.mjs BUILD_WEB_DIR NATIVE_TINYGPT [--chromium PATH] [--firefox PATH] [--keep DIR]");
const TOKENS = 40;
const work = workDir(args.option("--keep", ""), "tinygpt-web-browser-");
const t0 = Date.now();

const fixtures = makeFixtures(args.native, work, "browser");
corpusSlice(work, 30000);  // /fixtures/corpus.txt for the training run
writeFileSync(join(work, "corrupt.tinygpt"), "not a model, only a few bytes of text\n".repeat(40));
console.log(`fixtures: ${fixtures.length} models in ${((Date.now() - t0) / 1000).toFixed(1)} s (${work})`);

const mounts = { "/": args.buildDir, "/fixtures/": work };
const server = await serve(mounts);
const isolatedServer = await serve(mounts, { isolated: true });
const browser = await launchBrowser(args, work);
console.log(`browser: ${await browser.version()}`);
let origin = server.origin;  // the server the checks below use
let tag = "";  // "[isolated] " while they run on the cross-origin isolated one
const { check: checkAny, finish } = checker();
const check = (ok, message) => checkAny(ok, tag + message);
const page = (query) => `${origin}/index.html?${new URLSearchParams(query)}`;

// Everything the page asked for came from the test server (or was a blob: of its own).
function checkLocal(what, result) {
  const outside = result.requests.filter((u) => !u.startsWith(origin) && !u.startsWith("blob:") && !u.startsWith("data:"));
  check(outside.length === 0, `${what}: no request outside the page's server${outside.length ? `: ${outside[0]}` : ""}`);
}

// Threads the page runs on: 1 where it is not cross-origin isolated, otherwise the browser's
// cores (at most 16). Returns the number expected.
function expectedThreads(r, cores) {
  const want = r.isolated ? Math.min(16, cores) : 1;
  check(r.threads === want, `the engine runs on ${r.threads} thread(s): ${want} expected ` +
    `(cross-origin isolated: ${r.isolated}${r.isolated ? `, cores: ${cores}` : ""})`);
}

async function checkThreads() {
  const tab = await browser.newPage();
  try {
    await tab.goto(`${origin}/index.html`, { waitUntil: "load" });
    const cores = await tab.evaluate(() => navigator.hardwareConcurrency);
    const isolated = await tab.evaluate(() => self.crossOriginIsolated === true);
    check(isolated, "the page is cross-origin isolated (COOP/COEP headers)");
    return cores;
  } finally {
    await tab.close();
  }
}

async function checkGenerate(fixture, cores = 1) {
  const { name, file } = fixture;
  const inspect = nativeInspect(args.native, file);
  const moeLayers = (inspect.config.moe?.layers ?? []).filter((k) => k === "moe").length;
  const expected = nativeSample(args.native, file, PROMPT, TOKENS).text;
  let r;
  try {
    r = await runPage(browser, page({ model: `/fixtures/${name}`, prompt: PROMPT, tokens: TOKENS, temperature: 0, run: 1 }));
  } catch (e) {
    check(false, `${name}: the page finishes: ${e.message}`);
    return;
  }
  if (!check(r.state === "done", `${name} (${fixture.note}): state ${r.state}${r.state === "done" ? "" : `: ${r.output}`}`)) {
    console.log(r.console.join("\n"));
    return r.page.close();
  }
  expectedThreads(r, cores);
  check(r.output === expected, `${name}: #output equals native greedy sample: ${JSON.stringify(r.output)}` +
    (r.output === expected ? "" : ` vs ${JSON.stringify(expected)}`));
  const routing = r.routing;
  check(Array.isArray(routing) && routing.length === TOKENS, `${name}: #routing has ${routing?.length} tokens (${TOKENS} generated)`);
  if (Array.isArray(routing)) {
    const problems = routing.map((t, i) => {
      if (typeof t.token !== "string" || !Number.isInteger(t.id)) return `token ${i}: no text or id`;
      const p = routingProblem(t.layers, moeLayers, inspect.config.experts, inspect.config.topk);
      return p && `token ${i}: ${p}`;
    }).filter(Boolean);
    check(problems.length === 0, `${name}: every token: ${moeLayers} MoE layers × top-${inspect.config.topk} ` +
      `of ${inspect.config.experts}, gates in (0, 1]${problems.length ? ` — ${problems[0]}` : ""}`);
    check(routing.map((t) => t.token).join("") === r.output, `${name}: the routing's token pieces make #output`);
  }
  // The grid shows a row per token and the load bars one chart per MoE layer.
  const drawn = await r.page.evaluate(() => ({
    rows: document.querySelectorAll("#routing-grid tbody tr").length,
    chips: document.querySelectorAll("#routing-grid tbody .chip").length,
    loads: document.querySelectorAll("#load .load-layer").length,
  }));
  check(drawn.rows === TOKENS && drawn.chips === TOKENS * moeLayers * inspect.config.topk && drawn.loads === moeLayers,
    `${name}: the grid draws ${drawn.rows} rows, ${drawn.chips} expert chips, ${drawn.loads} load charts`);
  checkLocal(name, r);
  await r.page.close();
}

async function checkTraining(cores = 1) {
  const query = { train: "/fixtures/corpus.txt", steps: 20, experts: 4, topk: 2, d_model: 64, layers: 2, heads: 4,
    ctx: 64, batch: 4, lr: 0.003, seed: 1, run: 1 };
  let r;
  try {
    r = await runPage(browser, page(query), 90000);
  } catch (e) {
    check(false, `training in the page finishes: ${e.message}`);
    return;
  }
  if (!check(r.state === "done", `?train=…&steps=20&experts=4&topk=2: state ${r.state}${r.state === "done" ? "" : `: ${r.output}`}`)) {
    console.log(r.console.join("\n"));
    return r.page.close();
  }
  expectedThreads(r, cores);
  const losses = Array.isArray(r.training) ? r.training.map((s) => s.loss) : [];
  check(losses.length === 20 && losses.every(Number.isFinite), `#training has ${losses.length} finite losses`);
  const tail = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  check(losses.length === 20 && tail < losses[0] - 0.2,
    `training in the page lowers the loss: ${losses[0]?.toFixed(3)} → ${tail.toFixed(3)} (mean of the last 5)`);
  const curve = await r.page.evaluate(() => document.querySelector("#loss-curve polyline")?.getAttribute("points").split(" ").length ?? 0);
  check(curve === losses.length, `the loss curve has ${curve} points`);
  // What Download .tinygpt offers: the same bytes, opened by the native CLI.
  const saved = await r.page.evaluate(async () => {
    if (!source || !source.trained) return "";
    const bytes = new Uint8Array(await source.blob.arrayBuffer());
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(text);
  });
  const file = join(work, "downloaded.tinygpt");
  writeFileSync(file, Buffer.from(saved, "base64"));
  let inspect = null;
  try {
    inspect = nativeInspect(args.native, file);
  } catch (e) {
    inspect = { error: e.message.split("\n")[0] };
  }
  check(inspect.config?.experts === 4 && inspect.config?.topk === 2 && inspect.step === 20,
    `the download opens in native inspect: ${inspect.error ?? `${inspect.format}, step ${inspect.step}, E${inspect.config.experts} K${inspect.config.topk}`}`);
  checkLocal("training", r);
  await r.page.close();
}

async function checkError(what, query) {
  let r;
  try {
    r = await runPage(browser, page(query));
  } catch (e) {
    check(false, `${what}: the page finishes: ${e.message}`);
    return;
  }
  check(r.state === "error" && r.output.length > 0, `${what}: state ${r.state}, #output ${JSON.stringify(r.output.slice(0, 120))}`);
  await r.page.close();
}

// The page as a person uses it: open a file with the file input, Generate, Stop (which ends the
// worker and reopens the model in a new one), Generate again greedily, then drop another file.
async function checkInteractive(fixture, other) {
  const expected = nativeSample(args.native, fixture.file, PROMPT, 10).text;
  const tab = await browser.newPage();
  // Idle: the page says "ready" (nothing running, no restart under way) with a model open.
  const idle = () => tab.waitForFunction(() => document.body.dataset.state === "ready" && info !== null,
    { timeout: 30000, polling: 100 });
  try {
    await tab.goto(`${server.origin}/index.html`, { waitUntil: "load" });
    await (await tab.$("#model-file")).uploadFile(fixture.file);
    await idle();
    const facts = await tab.$eval("#model-facts", (e) => e.textContent);
    check(facts.includes(fixture.name), `file input: ${fixture.name} opened and described`);
    await tab.evaluate(() => {
      document.getElementById("tokens").value = "100000";
      document.getElementById("temperature").value = "0.8";
    });
    await tab.click("#generate");
    await tab.waitForFunction(() => document.querySelectorAll("#routing-grid tbody tr").length >= 5, { timeout: 30000, polling: 50 });
    await tab.click("#stop");
    await idle();
    const stopped = await tab.$eval("#gen-stats", (e) => e.textContent);
    const reopened = await tab.$eval("#model-progress", (e) => e.textContent);
    check(/stopped after \d+ tokens/.test(stopped) && /^Opened/.test(reopened),
      `Stop ends a long generation and reopens the model: "${stopped}", "${reopened}"`);
    await tab.evaluate((prompt) => {
      document.getElementById("prompt").value = prompt;
      document.getElementById("tokens").value = "10";
      document.getElementById("temperature").value = "0";
    }, PROMPT);
    await tab.click("#generate");
    await idle();
    const output = await tab.$eval("#output", (e) => e.textContent);
    check(output === expected, `after Stop, Generate gives native greedy text: ${JSON.stringify(output)}`);
    // Drag and drop: a drop event carrying a File (made in the page from the served fixture).
    await tab.evaluate(async (url, name) => {
      const file = new File([await (await fetch(url)).blob()], name);
      const data = new DataTransfer();
      data.items.add(file);
      document.getElementById("drop-model").dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    }, `/fixtures/${other.name}`, other.name);
    await tab.waitForFunction((name) => document.body.dataset.state === "ready" &&
      document.getElementById("model-facts").textContent.includes(name), { timeout: 30000, polling: 100 }, other.name);
    const family = await tab.evaluate(() => info.family);
    check(family === other.family, `drag and drop: ${other.name} opened (${family})`);
  } catch (e) {
    check(false, `the page used by hand: ${e.message}`);
  } finally {
    await tab.close();
  }
}

try {
  for (const f of fixtures) await checkGenerate(f);
  await checkInteractive(fixtures[0], fixtures[1]);
  await checkTraining();
  await checkError("a missing model", { model: "/fixtures/missing.tinygpt", prompt: PROMPT, tokens: 5, run: 1 });
  await checkError("a corrupt model", { model: "/fixtures/corrupt.tinygpt", prompt: PROMPT, tokens: 5, run: 1 });
  // The same page, cross-origin isolated: the threaded build.
  origin = isolatedServer.origin;
  tag = "[isolated] ";
  const cores = await checkThreads();
  for (const f of fixtures) await checkGenerate(f, cores);
  await checkTraining(cores);
} finally {
  await browser.close();
  await server.close();
  await isolatedServer.close();
}
console.log(`in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
finish();
