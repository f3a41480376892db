// Parses Mermaid files with Mermaid's own parser and prints, per file, the
// diagram type it recognised. Exits 1 at the first file it rejects.
//
// Mermaid's parser runs in a browser: jsdom stands in for the DOM that its
// sanitiser (DOMPurify) needs at import time, so the globals are set before
// mermaid is imported.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
globalThis.Element = dom.window.Element;
globalThis.HTMLElement = dom.window.HTMLElement;

const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node check.mjs FILE.mmd...");
  process.exit(2);
}
for (const file of files) {
  const text = readFileSync(file, "utf8");
  try {
    const result = await mermaid.parse(text);
    console.log(`ok ${result.diagramType} ${file}`);
  } catch (err) {
    console.log(`error ${file}: ${err && err.message ? err.message : err}`);
    process.exit(1);
  }
}
