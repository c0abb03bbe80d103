// A fixed-delay HTTP server for benchmarks/bench_load.py: every request is answered after
// exactly DELAY_MS, so a load generator's latency minus DELAY_MS is its own error.
//
// Usage: node fixed_delay_server.js PORT [DELAY_MS] [coarse]
//
// How this works: node's setTimeout has millisecond granularity (libuv keeps its loop
// clock in whole ms), so a bare setTimeout(10) fires anywhere in about 9..11 ms. Unless
// "coarse" is given, the timer is set for DELAY_MS - 2 and the last stretch is waited out
// with setImmediate, checking process.hrtime, so the response leaves within a few tens of
// microseconds of DELAY_MS (this spins the server's core while a request is in its last
// 2 ms: the server has a core to itself in the benchmark). The server measures what it
// really held each request (arrival of the request to res.end) and reports it, with the
// request count, at GET /stats (JSON; ?reset=1 clears it). GET /nginx-status answers in
// nginx's stub_status format, so bench_markov's Sampler can count the requests served.
"use strict";

const http = require("http");

const port = Number(process.argv[2]);
const delayMs = Number(process.argv[3] || 10);
const coarse = process.argv[4] === "coarse";
const delayNs = BigInt(Math.round(delayMs * 1e6));
const BODY = Buffer.from("ok\n");
const HEADERS = { "Content-Type": "text/plain", "Content-Length": String(BODY.length) };

let served = 0;
let holds = []; // microseconds each request was held, since the last reset

function finish(res, started) {
  res.writeHead(200, HEADERS);
  res.end(BODY);
  served += 1;
  holds.push(Number(process.hrtime.bigint() - started) / 1000);
}

function spin(res, started) {
  if (process.hrtime.bigint() - started >= delayNs) {
    finish(res, started);
  } else {
    setImmediate(spin, res, started);
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, rank)];
}

const server = http.createServer((req, res) => {
  if (req.url === "/nginx-status") {
    const body = `Active connections: 1 \nserver accepts handled requests\n` +
      ` ${served} ${served} ${served} \nReading: 0 Writing: 1 Waiting: 0 \n`;
    res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": body.length });
    res.end(body);
    return;
  }
  if (req.url.startsWith("/stats")) {
    const sorted = Float64Array.from(holds).sort();
    const body = JSON.stringify({
      served, delay_ms: delayMs, coarse, count: sorted.length,
      hold_ms: {
        p50: percentile(sorted, 50) / 1000, p99: percentile(sorted, 99) / 1000,
        max: sorted.length ? sorted[sorted.length - 1] / 1000 : null,
      },
    });
    if (req.url.includes("reset=1")) holds = [];
    res.writeHead(200, { "Content-Type": "application/json",
                         "Content-Length": Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  const started = process.hrtime.bigint();
  if (coarse) {
    setTimeout(finish, delayMs, res, started);
  } else {
    setTimeout(spin, Math.max(0, delayMs - 2), res, started);
  }
});
server.keepAliveTimeout = 120000;
server.headersTimeout = 121000;
server.requestTimeout = 0;
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`listening on 127.0.0.1:${port}, delay ${delayMs} ms\n`);
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
