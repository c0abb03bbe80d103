// Node's own HTTP/1.1 server (llhttp parser) for tests/test_more_servers.py.
// `node tests/node_http_server.js PORT` answers GET, HEAD and POST with 200 "ok" after
// reading the whole body, other methods with 405 and Allow: the app does as little as
// possible so that what assay judges is node's parser, not the application.
"use strict";
const http = require("http");

const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    const ok = ["GET", "HEAD", "POST"].includes(req.method);
    const body = ok ? "ok\n" : "method not allowed\n";
    const headers = { "Content-Type": "text/plain", "Content-Length": String(body.length) };
    if (!ok) headers.Allow = "GET, HEAD, POST";
    res.writeHead(ok ? 200 : 405, headers);
    res.end(body);
  });
});
server.listen(port, "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
