// Peer benchmark: build N distinct passes with passkit-generator 3.x from the same files
// (pass.json, images, .lproj strings) and certificates the Python benchmark uses.
//
//   node bench/peer/pkpass.cjs <peer_dir> <job.json>
//
// job.json: {"files_dir": "...", "cert": "...", "key": "...", "wwdr": "...", "count": 1000}
// Prints one JSON line: {"count", "seconds", "passes_per_second", "max_rss_mb", "version"}.
"use strict";

const fs = require("fs");
const path = require("path");

const [peerDir, jobPath] = process.argv.slice(2);
const job = JSON.parse(fs.readFileSync(jobPath, "utf8"));
const modulePath = path.join(peerDir, "node_modules", "passkit-generator");
const { PKPass } = require(modulePath);
const { version } = require(path.join(modulePath, "package.json"));

function readTree(root, prefix = "") {
  const files = {};
  for (const entry of fs.readdirSync(path.join(root, prefix), { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) Object.assign(files, readTree(root, relative));
    else files[relative] = fs.readFileSync(path.join(root, relative));
  }
  return files;
}

const buffers = readTree(job.files_dir);
const certificates = {
  signerCert: fs.readFileSync(job.cert, "utf8"),
  signerKey: fs.readFileSync(job.key, "utf8"),
  wwdr: fs.readFileSync(job.wwdr, "utf8"),
};

function build(i) {
  const pass = new PKPass({ ...buffers }, certificates, {
    serialNumber: `bench-${String(i).padStart(12, "0")}`,
  });
  const points = pass.primaryFields.pop();
  pass.primaryFields.push({ ...points, value: i });
  pass.setBarcodes({
    format: "PKBarcodeFormatQR",
    message: `CARD${String(i).padStart(8, "0")}`,
    messageEncoding: "iso-8859-1",
    altText: `CARD${String(i).padStart(8, "0")}`,
  });
  return pass.getAsBuffer();
}

build(0); // warm-up, and fail early on a bad setup
const started = process.hrtime.bigint();
let bytes = 0;
for (let i = 1; i <= job.count; i++) bytes += build(i).length;
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(
  JSON.stringify({
    count: job.count,
    seconds,
    passes_per_second: job.count / seconds,
    average_bytes: Math.round(bytes / job.count),
    max_rss_mb: process.resourceUsage().maxRSS / 1024,
    version,
  }),
);
