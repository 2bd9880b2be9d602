// A minimal APNs-like HTTP/2 server on Node's native http2, for bench/apns.py.
//
//   node bench/apns_server.mjs --cert server.pem --key server.key --ca ca.pem \
//        [--max-streams 1000] [--goaway-after N] [--log-requests]
//
// TLS with a required client certificate issued by --ca (like APNs certificate auth, spec §4.2),
// ALPN h2 only. Every POST /3/device/<token> with apns-topic and body {} gets 200 and an
// apns-id; anything else gets the APNs error status and reason. Listens on 127.0.0.1 on a free
// port and prints {"port": N} on stdout once ready; prints {"requests": N} and exits on SIGTERM.
// --log-requests also prints {"token": "...", "at": <ms since the epoch>} for every push
// answered 200, for bench/push_latency.py to time pushes against the requests that caused them.
// Written in Node so that the server, not the Python client, is never the bottleneck (§4.5).
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    cert: { type: "string" },
    key: { type: "string" },
    ca: { type: "string" },
    "max-streams": { type: "string", default: "1000" },
    "goaway-after": { type: "string", default: "0" },
    "log-requests": { type: "boolean", default: false },
  },
});
const goawayAfter = Number(values["goaway-after"]);
const logRequests = values["log-requests"];
let requests = 0;

const server = http2.createSecureServer({
  cert: readFileSync(values.cert),
  key: readFileSync(values.key),
  ca: readFileSync(values.ca),
  requestCert: true,
  rejectUnauthorized: true,
  allowHTTP1: false,
  noDelay: true,
  settings: { maxConcurrentStreams: Number(values["max-streams"]) },
});

function reply(stream, status, reason) {
  if (stream.destroyed) return;
  const headers = { ":status": status, "apns-id": randomUUID().toUpperCase() };
  if (status === 200) {
    stream.respond(headers, { endStream: true });
  } else {
    stream.respond({ ...headers, "content-type": "application/json" });
    stream.end(JSON.stringify({ reason }));
  }
}

server.on("session", (session) => {
  let count = 0;
  session.on("error", () => {});
  session.on("stream", (stream, headers) => {
    count += 1;
    if (goawayAfter > 0 && count === goawayAfter) {
      // Graceful: GOAWAY with the current last stream id, finish open streams, then close.
      session.close();
    }
    stream.on("error", () => {});
    const chunks = [];
    stream.on("data", (chunk) => chunks.push(chunk));
    stream.on("end", () => {
      requests += 1;
      const path = headers[":path"] || "";
      const body = Buffer.concat(chunks).toString();
      if (headers[":method"] !== "POST") return reply(stream, 405, "MethodNotAllowed");
      if (!path.startsWith("/3/device/")) return reply(stream, 404, "BadPath");
      if (!/^[0-9a-fA-F]+$/.test(path.slice(10))) return reply(stream, 400, "BadDeviceToken");
      if (!headers["apns-topic"]) return reply(stream, 400, "MissingTopic");
      if (body !== "{}") return reply(stream, 400, body ? "BadPayload" : "PayloadEmpty");
      if (logRequests) {
        const at = performance.timeOrigin + performance.now();
        process.stdout.write(JSON.stringify({ token: path.slice(10), at }) + "\n");
      }
      return reply(stream, 200);
    });
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});

process.on("SIGTERM", () => {
  const { user, system } = process.cpuUsage();
  process.stdout.write(JSON.stringify({ requests, cpu: (user + system) / 1e6 }) + "\n");
  process.exit(0);
});
