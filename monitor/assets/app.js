// choreo-monitor's page: the flow diagram with live counts, the instances
// that need attention, and one instance's path and sequence. Plain
// JavaScript, no build step, nothing fetched from anywhere but this server.
"use strict";

const STATES = ["running", "succeeded", "failed", "stuck", "violated", "dead_lettered", "partial"];
const svg = document.querySelector("#diagram svg");
const SVG_NS = "http://www.w3.org/2000/svg";

// The page says the spec's name already: the diagram is cropped to its
// graph and legend, without its own title.
function crop() {
  if (!svg) return;
  let box = null;
  for (const part of svg.querySelectorAll(":scope > g.edges, :scope > g.nodes, :scope > g.legend")) {
    const b = part.getBBox();
    if (!b.width && !b.height) continue;
    box = box
      ? { x1: Math.min(box.x1, b.x), y1: Math.min(box.y1, b.y), x2: Math.max(box.x2, b.x + b.width), y2: Math.max(box.y2, b.y + b.height) }
      : { x1: b.x, y1: b.y, x2: b.x + b.width, y2: b.y + b.height };
  }
  if (!box) return;
  // Room for the count badges above the top nodes.
  const pad = 20;
  const w = box.x2 - box.x1 + 2 * pad, h = box.y2 - box.y1 + 2 * pad;
  svg.setAttribute("viewBox", [box.x1 - pad, box.y1 - pad, w, h].map((v) => v.toFixed(1)).join(" "));
  svg.setAttribute("width", w.toFixed(0));
  svg.setAttribute("height", h.toFixed(0));
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function ms(x) {
  if (x === null || x === undefined) return "–";
  if (x >= 10000) return (x / 1000).toFixed(1) + " s";
  if (x >= 100) return Math.round(x) + " ms";
  return x.toFixed(1) + " ms";
}

function instanceLink(key) {
  return "/instances/" + encodeURIComponent(key);
}

// A badge at the top right of a diagram node, made once and updated.
const badges = new Map();
function badge(nodeId, text, kind) {
  if (!svg) return;
  const node = svg.getElementById(nodeId);
  if (!node) return;
  let b = badges.get(nodeId + kind);
  if (!b) {
    const box = node.getBBox();
    b = document.createElementNS(SVG_NS, "g");
    b.setAttribute("class", "count-badge " + kind);
    b.setAttribute("data-node", nodeId);
    const rect = document.createElementNS(SVG_NS, "rect");
    rect.setAttribute("rx", "8");
    rect.setAttribute("height", "16");
    const t = document.createElementNS(SVG_NS, "text");
    t.setAttribute("text-anchor", "middle");
    b.appendChild(rect);
    b.appendChild(t);
    b.dataset.x = String(box.x + box.width + (kind === "waiting" ? -4 : 6));
    b.dataset.y = String(box.y - (kind === "waiting" ? -box.height + 4 : 8));
    svg.appendChild(b);
    badges.set(nodeId + kind, b);
  }
  const t = b.querySelector("text");
  if (t.textContent !== text) {
    t.textContent = text;
    const w = Math.max(18, 7 * text.length + 8);
    const x = Number(b.dataset.x), y = Number(b.dataset.y);
    const rect = b.querySelector("rect");
    rect.setAttribute("x", String(x - w / 2));
    rect.setAttribute("y", String(y - 8));
    rect.setAttribute("width", String(w));
    t.setAttribute("x", String(x));
    t.setAttribute("y", String(y + 4));
  }
  b.style.display = text === "" ? "none" : "";
}

function eventNode(name) {
  if (!svg) return null;
  return svg.getElementById("e_" + name) || svg.getElementById("c_" + name);
}

function hot(node, cls, on) {
  if (node) node.classList.toggle(cls, on);
}

function showCounts(summary, lag) {
  for (const s of STATES) {
    const n = summary.instances[s] || 0;
    const c = document.getElementById("count-" + s);
    if (c) c.textContent = n.toLocaleString("en-US");
  }
  if (lag) document.getElementById("lag").textContent = lag.observed ? ms(lag.last_ms) : "–";
  for (const [name, n] of Object.entries(summary.events)) {
    const node = eventNode(name);
    if (node) badge(node.id, n.toLocaleString("en-US"), "seen");
  }
  if (svg) {
    for (const g of svg.querySelectorAll("g.event, g.command")) {
      const name = g.id.slice(2);
      hot(g, "hot-violated", (summary.violations[name] || 0) > 0);
      hot(g, "hot-dead", (summary.dead_letters[name] || 0) > 0);
    }
  }
  const body = document.querySelector("#reactions tbody");
  body.replaceChildren();
  for (const r of summary.reactions) {
    const id = "r" + r.index;
    badge(id, r.handled.toLocaleString("en-US"), "seen");
    badge(id, r.waiting ? r.waiting + " waiting" : "", "waiting");
    if (svg) {
      const node = svg.getElementById(id);
      hot(node, "hot-stuck", r.stuck > 0);
      hot(node, "hot-dead", r.dead_lettered > 0);
    }
    const row = el("tr", { "data-reaction": id });
    if (r.stuck > 0) row.classList.add("hot");
    for (const v of [r.participant, r.trigger, r.handled, r.waiting, ms(r.p50_ms), ms(r.p99_ms)]) {
      row.appendChild(el("td", {}, String(v)));
    }
    body.appendChild(row);
  }
}

function showList(state, list, total) {
  const ul = document.getElementById("list-" + state);
  document.getElementById("n-" + state).textContent = String(total);
  ul.replaceChildren();
  if (!list.length) {
    ul.appendChild(el("li", { class: "empty" }, "none"));
    return;
  }
  for (const i of list) {
    const li = el("li", { "data-key": i.key });
    li.appendChild(el("a", { href: instanceLink(i.key) }, i.key));
    const why = i.waiting && i.waiting.length ? "waits for " + i.waiting.join("; ") : (i.reason || "");
    li.appendChild(el("span", { class: "why" }, why));
    ul.appendChild(li);
  }
}

function live() {
  const status = document.getElementById("connection");
  const source = new EventSource("/api/live");
  source.addEventListener("snapshot", (m) => {
    const s = JSON.parse(m.data);
    status.textContent = "live";
    status.classList.add("live");
    showCounts(s.summary, s.lag);
    showList("stuck", s.stuck, s.summary.instances.stuck || 0);
    showList("violated", s.violated, s.summary.instances.violated || 0);
    showList("dead_lettered", s.dead_lettered, s.summary.instances.dead_lettered || 0);
  });
  source.onerror = () => {
    status.textContent = "reconnecting…";
    status.classList.remove("live");
  };
}

// An instance's page: its path on the diagram. The events it saw, the
// reactions that emitted them (by the notices), and from the diagram's
// edges: the gateways between them, and the sinks (reactions that emit
// nothing) whose triggers it saw and that it does not wait for.
function markPath(view) {
  if (!svg) return;
  const on = new Set();
  for (const e of view.events) {
    const node = eventNode(e.name);
    if (node) on.add(node.id);
    if (e.reaction !== null && e.reaction !== undefined) on.add("r" + e.reaction);
  }
  const into = new Map(), out = new Map();
  for (const p of svg.querySelectorAll("path.flow[data-from]")) {
    const { from, to } = p.dataset;
    if (!out.has(from)) out.set(from, []);
    if (!into.has(to)) into.set(to, []);
    out.get(from).push(to);
    into.get(to).push(from);
  }
  const kind = (id) => {
    const g = svg.getElementById(id);
    return g ? g.getAttribute("class") : "";
  };
  const label = (g) => {
    const t = g.querySelector("text");
    return t ? t.textContent : "";
  };
  for (const g of svg.querySelectorAll("g.nodes > g.reaction")) {
    if (on.has(g.id) || (out.get(g.id) || []).length) continue;
    const sources = into.get(g.id) || [];
    const join = sources.find((s) => kind(s) === "join");
    const triggers = join ? into.get(join) || [] : sources;
    const seen = join ? triggers.every((t) => on.has(t)) : triggers.some((t) => on.has(t));
    const waits = view.waiting.some((w) => w.participant === label(g));
    if (seen && !waits) on.add(g.id);
  }
  // Gateways: a join before a reaction on the path, a decision after one,
  // a fan-out after one that leads to an event seen.
  for (const g of svg.querySelectorAll("g.nodes > g.join, g.nodes > g.decision, g.nodes > g.fan-out")) {
    const before = into.get(g.id) || [], after = out.get(g.id) || [];
    const c = g.getAttribute("class");
    if (c === "join" ? after.some((n) => on.has(n)) : before.some((n) => on.has(n))) on.add(g.id);
  }
  for (const g of svg.querySelectorAll("g.nodes > g.fan-out")) {
    if (on.has(g.id) && !(out.get(g.id) || []).some((n) => on.has(n))) on.delete(g.id);
  }
  if (!svg.getElementById("arrow-path")) {
    // The arrowheads of the path in its colour (see the stylesheet).
    const arrow = svg.getElementById("arrow");
    if (arrow) {
      const copy = arrow.cloneNode(true);
      copy.id = "arrow-path";
      // The path's edges are drawn wider, and markers grow with them.
      copy.setAttribute("markerWidth", "4.5");
      copy.setAttribute("markerHeight", "4.5");
      arrow.parentNode.appendChild(copy);
    }
  }
  svg.classList.add("has-path");
  for (const g of svg.querySelectorAll("g.nodes > g[id]")) g.classList.toggle("on-path", on.has(g.id));
  for (const p of svg.querySelectorAll("path[data-from]")) {
    p.classList.toggle("on-path", on.has(p.dataset.from) && on.has(p.dataset.to));
  }
}

function sequence(view) {
  // One row per event, in the order seen: when (from the start, and the
  // latency from its cause), what, and a mark in the lane of whoever
  // emitted it (commands and external events in the first lane).
  const lanes = ["in"];
  for (const e of view.events) {
    if (e.participant && !lanes.includes(e.participant)) lanes.push(e.participant);
  }
  const box = document.getElementById("sequence");
  box.replaceChildren();
  box.style.gridTemplateColumns = "auto auto repeat(" + lanes.length + ", minmax(26px, 1fr))";
  box.appendChild(el("div", { class: "time" }, "time"));
  box.appendChild(el("div", { class: "lane-head name" }, "event"));
  for (const l of lanes) box.appendChild(el("div", { class: "lane-head", title: l }, l));
  const t0 = view.events.length ? view.events[0].at_ms : 0;
  for (const e of view.events) {
    const latency = e.latency_ms !== null && e.latency_ms !== undefined ? " (+" + ms(e.latency_ms) + ")" : "";
    box.appendChild(el("div", { class: "time", title: new Date(e.at_ms).toISOString() }, ms(e.at_ms - t0) + latency));
    box.appendChild(el("div", { class: "msg" + (e.participant ? "" : " command"), title: e.id, "data-event": e.name }, e.name));
    const lane = e.participant ? lanes.indexOf(e.participant) : 0;
    lanes.forEach((l, i) => {
      const cell = el("div", { class: "cell" });
      if (i === lane) cell.appendChild(el("span", { class: "dot", title: e.participant || "command or external event" }));
      box.appendChild(cell);
    });
  }
}

async function showInstance(key) {
  const panel = document.getElementById("instance");
  panel.hidden = false;
  document.getElementById("instance-key").textContent = key;
  const r = await fetch("/api/instances/" + encodeURIComponent(key));
  const state = document.getElementById("instance-state");
  if (!r.ok) {
    const body = await r.json().catch(() => ({ error: r.statusText }));
    state.className = "state";
    state.textContent = "not found";
    document.getElementById("instance-reason").textContent = body.error;
    return;
  }
  const view = await r.json();
  state.className = "state " + view.state;
  state.textContent = view.state.replace("_", "-");
  document.getElementById("instance-reason").textContent = view.reason || "";
  const waits = document.getElementById("instance-waiting");
  waits.replaceChildren();
  for (const w of view.waiting) {
    waits.appendChild(el("div", { class: "waits" }, "waits for " + w.participant + (w.join ? " (join, missing " : " on ") + w.events.join(", ") + (w.join ? ")" : "")));
  }
  const problems = document.getElementById("instance-violations");
  problems.replaceChildren();
  for (const v of view.violations) problems.appendChild(el("div", { class: "problem" }, "violation: " + v.reason));
  const dead = document.getElementById("instance-dead");
  dead.replaceChildren();
  for (const d of view.dead_letters) dead.appendChild(el("div", { class: "problem" }, "dead-lettered: " + d.reason));
  markPath(view);
  sequence(view);
}

document.getElementById("search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const key = document.getElementById("search-key").value.trim();
  if (key) window.location.href = instanceLink(key);
});

crop();
live();
const m = window.location.pathname.match(/^\/instances\/(.+)$/);
if (m) {
  document.body.classList.add("instance-page");
  let key = m[1];
  try {
    key = decodeURIComponent(key);
  } catch (_) {
    // A malformed escape in the address: looked up as written.
  }
  showInstance(key);
  setInterval(() => showInstance(key), 2000);
}
