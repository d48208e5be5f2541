// http_get.mjs: the Node peer in the HTTP benchmark (Node's built-in fetch,
// i.e. undici with its global keep-alive agent).
//
//   node bench/http_get.mjs URL N CONC
//
// N GETs of URL, each response's JSON decoded (await res.json()) and checked.
// CONC async workers, each awaiting one request after another and taking the
// next request index until N are done (CONC=1: sequential awaits).
// Prints requests/second on stdout.
const [url, nArg, concArg] = process.argv.slice(2);
const n = Number(nArg), conc = Number(concArg);
let next = 0;

async function worker() {
  while (next < n) {
    next++;
    const res = await fetch(url);
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    const doc = await res.json();
    if (!("token" in doc)) throw new Error("unexpected document");
  }
}

const t0 = performance.now();
await Promise.all(Array.from({ length: conc }, worker));
const secs = (performance.now() - t0) / 1000;
console.error(`${n} requests, ${secs.toFixed(3)} s`);
console.log((n / secs).toFixed(1));
