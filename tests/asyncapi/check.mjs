// Parses AsyncAPI documents with @asyncapi/parser (the parser AsyncAPI
// Studio, the generator and the CLI run: the specification's JSON Schema,
// then its Spectral rules) and prints one JSON line per file: what the
// parser found (channels, operations, messages) and each diagnostic with
// its severity (0 error, 1 warning, 2 information, 3 hint), so that a test
// can compare the counts with the spec and fail on any error.
// Exits 1 when a file has an error or does not parse.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node check.mjs FILE.yaml|FILE.json...");
  process.exit(2);
}
const parser = new Parser();
let failed = false;
for (const file of files) {
  const text = readFileSync(file, "utf8");
  const { document, diagnostics } = await parser.parse(text, { source: file });
  const report = {
    file,
    diagnostics: diagnostics.map((d) => ({
      severity: d.severity,
      code: String(d.code),
      message: d.message,
      path: d.path.join("/"),
    })),
  };
  if (document) {
    report.channels = document.channels().length;
    report.operations = document.operations().length;
    report.messages = document.components().messages().length;
  }
  if (!document || diagnostics.some((d) => d.severity === 0)) {
    failed = true;
  }
  console.log(JSON.stringify(report));
}
process.exit(failed ? 1 : 0);
