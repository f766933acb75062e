// Serves build-web/ on http://127.0.0.1:PORT/ with the two headers that make the page
// cross-origin isolated (Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy:
// require-corp), so the page runs the threaded engine (tinygpt-threads.js) on every core.
// Node's standard library only: no `npm ci` needed.
//   node tools/web-check/serve.mjs [BUILD_WEB_DIR] [--port 8000]
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { serve } from "./lib.mjs";

const args = process.argv.slice(2);
const portAt = args.indexOf("--port");
const port = portAt >= 0 ? Number(args[portAt + 1]) : 8000;
const dir = resolve(args.find((a, i) => !a.startsWith("--") && args[i - 1] !== "--port") ?? "build-web");
if (!existsSync(resolve(dir, "tinygpt-threads.js"))) {
  console.error(`${dir}/tinygpt-threads.js does not exist: run scripts/build-web.sh first`);
  process.exit(2);
}
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port: ${args[portAt + 1]} is not a port number`);
  process.exit(2);
}
const server = await serve({ "/": dir }, { isolated: true, port });
console.log(`serving ${dir} cross-origin isolated at ${server.origin}/ (Ctrl-C stops)`);
