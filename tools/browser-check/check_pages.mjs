// The pages of `tinygpt experts` and `tinygpt report` in a real browser (a ctest test, registered
// when Chromium is installed): trains a small MoE model on a slice of data/shakespeare.txt (with
// a --log), writes the experts page of the model and the report page of its log (--html) and
// their plots (--svg), and opens them in headless Chromium.
//  - DOM: with every section unfolded, each <svg> on the page has a non-zero size and marks
//    (rects, circles, lines, text) of non-zero size besides its background; the page shows as
//    many plots as there are .svg files.
//  - Pixels: a screenshot of the page and of every .svg file is not blank (enough pixels that
//    are not the white background, in enough colours).
// One Chromium for every page and file, driven by puppeteer-core (tools/web-check's, installed by
// scripts/install-deps.sh); the PNG screenshots are decoded here.
//   node tools/browser-check/check_pages.mjs path/to/tinygpt [--chromium PATH] [--keep DIR]
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { inflateSync } from "node:zlib";

import { launchChromium } from "../web-check/lib.mjs";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const binary = args[0];
if (!binary || binary.startsWith("--")) {
  console.error("usage: node check_pages.mjs path/to/tinygpt [--chromium PATH] [--keep DIR]");
  process.exit(2);
}
const chromium = option("--chromium", "/usr/bin/chromium");
const keep = option("--keep", "");
const work = keep ? resolve(keep) : mkdtempSync(join(tmpdir(), "tinygpt-browser-"));
mkdirSync(work, { recursive: true });
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
};

function run(command, argv, what) {
  const r = spawnSync(command, argv, { encoding: "latin1", maxBuffer: 1 << 28, timeout: 180000 });
  if (r.status !== 0) {
    console.error(`${what} failed (${r.error ?? `exit ${r.status}`}):\n${r.stderr}`);
    process.exit(1);
  }
  return r.stdout;
}


// RGB(A) pixels of an 8-bit, non-interlaced PNG (what Chromium writes).
function decodePng(buffer) {
  const signature = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  if (!buffer.subarray(0, 8).equals(signature)) throw new Error("not a PNG");
  let pos = 8, width = 0, height = 0, depth = 0, colour = 0, interlace = 0;
  const idat = [];
  while (pos < buffer.length) {
    const length = buffer.readUInt32BE(pos);
    const type = buffer.toString("latin1", pos + 4, pos + 8);
    const body = buffer.subarray(pos + 8, pos + 8 + length);
    pos += 12 + length;
    if (type === "IHDR") {
      [width, height, depth, colour, interlace] =
        [body.readUInt32BE(0), body.readUInt32BE(4), body[8], body[9], body[12]];
    } else if (type === "IDAT") idat.push(body);
    else if (type === "IEND") break;
  }
  if (depth !== 8 || (colour !== 2 && colour !== 6) || interlace !== 0)
    throw new Error(`unsupported PNG (depth ${depth}, colour type ${colour})`);
  const bpp = colour === 6 ? 4 : 3, stride = width * bpp;
  const raw = inflateSync(Buffer.concat(idat));
  const out = Buffer.alloc(height * stride);
  for (let y = 0; y < height; ++y) {
    const filter = raw[y * (stride + 1)], line = y * (stride + 1) + 1, o = y * stride;
    for (let x = 0; x < stride; ++x) {
      const a = x >= bpp ? out[o + x - bpp] : 0, b = y > 0 ? out[o - stride + x] : 0;
      const c = x >= bpp && y > 0 ? out[o - stride + x - bpp] : 0;
      let v = raw[line + x];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[o + x] = v & 255;
    }
  }
  return { width, height, bpp, pixels: out };
}

// The share of pixels that are not the white background, and how many colours (4 bits a
// channel) the picture has.
function inkOf(png) {
  const { width, height, bpp, pixels } = png;
  let ink = 0;
  const colours = new Set();
  for (let i = 0; i < width * height * bpp; i += bpp) {
    const [r, g, b] = [pixels[i], pixels[i + 1], pixels[i + 2]];
    if (r < 240 || g < 240 || b < 240) ++ink;
    colours.add((r >> 4) * 256 + (g >> 4) * 16 + (b >> 4));
  }
  return { share: ink / (width * height), colours: colours.size };
}

// A screenshot of `file` in a window of width × height (kept with --keep).
async function screenshot(tab, file, width, height, name) {
  await tab.setViewport({ width: Math.ceil(width), height: Math.ceil(height) });
  await tab.goto(pathToFileURL(file).href, { waitUntil: "load" });
  const png = Buffer.from(await tab.screenshot({ type: "png" }));
  if (keep) writeFileSync(join(work, `${name}.png`), png);
  return decodePng(png);
}

// In the page: unfold every section, then measure every plot and its marks.
function probePlots() {
  document.querySelectorAll("details").forEach((d) => { d.open = true; });
  return [...document.querySelectorAll("svg")].map((svg) => {
    const box = svg.getBoundingClientRect();
    const marks = [...svg.querySelectorAll("rect, circle, line, polyline, text")].filter((m) => {
      if (m.tagName === "rect" && m.getAttribute("width") === "100%") return false;  // background
      const b = m.getBBox();
      return (b.width > 0 && b.height > 0) ||
        (m.tagName === "line" && (b.width > 0 || b.height > 0));
    });
    return { title: svg.querySelector("title")?.textContent ?? "", width: box.width,
             height: box.height, marks: marks.length,
             text: marks.filter((m) => m.tagName === "text").length };
  });
}

// One page and its .svg files: the DOM probe, then screenshots of the page and of every file.
async function checkPage(tab, name, page, figures, minFiles) {
  const files = readdirSync(figures).filter((f) => f.endsWith(".svg")).sort();
  check(files.length >= minFiles, `${name}: ${files.length} .svg files written`);

  await tab.setViewport({ width: 1000, height: 1800 });
  await tab.goto(pathToFileURL(page).href, { waitUntil: "load" });
  const plots = await tab.evaluate(probePlots);
  check(plots.length === files.length,
    `${name}: the page shows ${plots.length} plots, one per .svg file`);
  for (const p of plots)
    check(p.width > 0 && p.height > 0 && p.marks >= 3 && p.text >= 1,
      `${name}: plot "${p.title}": ${Math.round(p.width)}x${Math.round(p.height)}, ${p.marks} marks`);

  // The page as a reader first sees it: sections folded as the page has them.
  const shot = inkOf(await screenshot(tab, page, 1000, 1800, `${name}-page`));
  check(shot.share > 0.03 && shot.colours >= 24,
    `${name}: page screenshot: ${(100 * shot.share).toFixed(1)}% ink, ${shot.colours} colours`);
  for (const f of files) {
    const text = readFileSync(join(figures, f), "utf8");
    const size = /<svg[^>]* width="([\d.]+)" height="([\d.]+)"/.exec(text);
    check(size !== null, `${name}: ${f} has a size`);
    if (!size) continue;
    const ink = inkOf(await screenshot(tab, join(figures, f), +size[1], +size[2], `${name}-${f}`));
    check(ink.share > 0.01 && ink.colours >= 4,
      `${name}: ${f}: ${(100 * ink.share).toFixed(1)}% ink, ${ink.colours} colours`);
  }
}

const browser = await launchChromium(chromium, work);
try {
  const tab = await browser.newPage();
  const corpus = join(work, "corpus.txt");
  writeFileSync(corpus, readFileSync(join(repo, "data", "shakespeare.txt")).subarray(0, 40000));
  const model = join(work, "m.tinygpt"), log = join(work, "run.jsonl");
  run(binary, ["train", "--corpus", corpus, "--layers", "3", "--d-model", "32", "--heads", "2",
    "--d-mlp", "64", "--ctx", "64", "--batch", "4", "--steps", "30", "--moe-experts", "8",
    "--moe-topk", "2", "--sample-tokens", "0", "--val-split", "0.1", "--val-every", "10",
    "--log", log, "--out", model], "tinygpt train");
  const page = join(work, "page.html"), figures = join(work, "figures");
  run(binary, ["experts", model, "--corpus", corpus, "--max-tokens", "4000", "--html", page,
    "--svg", figures], "tinygpt experts");
  await checkPage(tab, "experts", page, figures, 10);
  // The run's log: loss with validation, aux, z, learning rate and a load heatmap per layer.
  const report = join(work, "report.html"), reportFigures = join(work, "report-figures");
  run(binary, ["report", log, "--html", report, "--svg", reportFigures], "tinygpt report");
  await checkPage(tab, "report", report, reportFigures, 7);
} finally {
  await browser.close();
  if (!keep) rmSync(work, { recursive: true, force: true });
}
if (failures.length) {
  console.error(`${failures.length} check(s) failed`);
  process.exit(1);
}
console.log("all pages render with non-empty plots");
