// bench/ratelimit_naive.mjs URL KEY N WINDOW: the backoff loop from
// ResiFactory's docs ("Handling 429"), as written there: up to 5 attempts,
// sleep((retryAfter * 1000 + jitter) * 2^attempt) with jitter = random up to
// 1000 ms. Only the jitter is scaled with the window (1000 ms is for a 60 s
// window); Retry-After comes from the server and is already scaled.
// N calls started at once. Prints one line: completed 429s seconds.
const [url, key, nArg, windowArg] = process.argv.slice(2);
const n = Number(nArg), scale = Number(windowArg) / 60;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let seen429 = 0;
const body = JSON.stringify({ country: "us", quantity: 50, proxyType: "rotating", format: "json" });
async function fn() {
  const res = await fetch(url, { method: "POST", body,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" } });
  await res.arrayBuffer();
  if (res.status === 429) seen429++;
  return { status: res.status, headers: { "retry-after": res.headers.get("retry-after") } };
}
// Pseudo-code: exponential backoff with jitter (the docs' function)
async function callWithBackoff(fn, maxAttempts = 5) {
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const result = await fn();
    if (result.status !== 429) return result;
    const retryAfter = parseInt(result.headers["retry-after"] || "1", 10);
    const jitter = Math.random() * 1000 * scale;
    await sleep((retryAfter * 1000 + jitter) * Math.pow(2, attempt));
  }
  throw new Error("Max retry attempts exceeded");
}
const t0 = performance.now();
const results = await Promise.allSettled(Array.from({ length: n }, () => callWithBackoff(fn)));
const done = results.filter((r) => r.status === "fulfilled" && r.value.status === 200).length;
console.log(`${done} ${seen429} ${((performance.now() - t0) / 1000).toFixed(3)}`);
