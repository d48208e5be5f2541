// bench/ratelimit_bottleneck.mjs URL KEY N WINDOW: Bottleneck 2 configured the
// way its README shows for "X requests per Y seconds" (Reservoir Intervals:
// reservoir = refresh amount = 20, reservoirRefreshInterval = the window),
// with its documented retry mechanism (a "failed" listener returning the
// delay; here the server's Retry-After). N calls scheduled at once.
// Prints one line: completed 429s seconds.
import Bottleneck from "bottleneck";

const [url, key, nArg, windowArg] = process.argv.slice(2);
const n = Number(nArg), windowMs = Number(windowArg) * 1000;
const limiter = new Bottleneck({
  reservoir: 20,
  reservoirRefreshAmount: 20,
  reservoirRefreshInterval: windowMs, // "must be divisible by 250"
});
let seen429 = 0;
limiter.on("failed", async (error, jobInfo) => {
  if (error.retryAfter !== undefined && jobInfo.retryCount < 4) return error.retryAfter * 1000;
});
const body = JSON.stringify({ country: "us", quantity: 50, proxyType: "rotating", format: "json" });
async function generate() {
  const res = await fetch(url, { method: "POST", body,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" } });
  await res.arrayBuffer();
  if (res.status === 429) {
    seen429++;
    const err = new Error("rate_limited");
    err.retryAfter = parseInt(res.headers.get("retry-after") || "1", 10);
    throw err;
  }
  return res.status;
}
const t0 = performance.now();
const results = await Promise.allSettled(Array.from({ length: n }, () => limiter.schedule(generate)));
const done = results.filter((r) => r.status === "fulfilled" && r.value === 200).length;
console.log(`${done} ${seen429} ${((performance.now() - t0) / 1000).toFixed(3)}`);
process.exit(0);
