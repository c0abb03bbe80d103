// node:http2 as an assay target: h2c with prior knowledge only, or TLS + ALPN h2 (with
// HTTP/1.1 beside it, so assay's HTTP/1.1 pre-flight and health probes are answered) when a
// certificate is given. Every request gets a small HTML page once its body is drained.
// Usage: node node_h2_server.js PORT [CERT KEY]
"use strict";
const http2 = require("node:http2");
const fs = require("node:fs");

const [port, cert, key] = process.argv.slice(2);
const page = "<html><body>assay node:http2 target</body></html>\n";

// The compatibility API: one handler for HTTP/2 streams and (allowHTTP1) HTTP/1.1 requests.
function answer(req, res) {
  req.on("error", () => {});
  res.on("error", () => {});
  req.resume();  // drain any request body (flow-control credit goes back)
  req.on("end", () => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(req.method === "HEAD" ? undefined : page);
  });
}

const server = cert
  ? http2.createSecureServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key),
                               allowHTTP1: true }, answer)
  : http2.createServer(answer);
server.on("sessionError", () => {});
server.on("error", (err) => { console.error(err); process.exit(1); });
server.listen(Number(port), "127.0.0.1", () => console.log(`listening ${port}`));
