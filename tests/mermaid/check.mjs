// Parses Mermaid files with Mermaid's own parser (the one mermaid.js runs
// before it draws) and prints one JSON line per file: the diagram type and
// what the parser found, so a test can compare counts with the spec.
// Exits 1 at the first file the parser rejects.
//
// Mermaid's parser runs in a browser: jsdom stands in for the DOM that its
// sanitiser (DOMPurify) needs, so the globals are set before mermaid loads.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;

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
    const { diagramType } = await mermaid.parse(text);
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
    const db = diagram.db;
    const report = { file, type: diagramType };
    if (db.getVertices) {
      report.vertices = db.getVertices().size;
      report.edges = db.getEdges().length;
    }
    if (db.getActors) {
      report.actors = db.getActors().size;
      // 24 is LINETYPE.SOLID_POINT in Mermaid's sequence db: an async `-)` arrow.
      report.arrows = db.getMessages().filter((m) => m.type === 24).length;
      report.messages = db.getMessages().length;
    }
    console.log(JSON.stringify(report));
  } catch (err) {
    console.log(JSON.stringify({ file, error: String(err && err.message ? err.message : err) }));
    process.exit(1);
  }
}
