/* archscout dashboard: architectures drawn with DOM calls (the parts come from /api/trial's "drawing").
 *
 * Every text from a study (op names, parameter values, labels) is set with textContent, never parsed as markup.
 * Exposes window.ArchscoutDraw.drawing(parts) -> a DocumentFragment.
 */
"use strict";

(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  /** The parts of an architecture: graphs (cells, DAGs), rows of blocks (stages) and tables of values. */
  function drawing(parts) {
    const out = document.createDocumentFragment();
    for (const part of parts) {
      out.append(el("h3", null, part.name));
      if (part.kind === "graph") out.append(drawGraph(part));
      else if (part.kind === "blocks") out.append(drawBlocks(part));
      else if (part.kind === "values") out.append(drawValues(part));
    }
    return out;
  }

  function drawValues(part) {
    const table = el("table", "grid");
    const tb = el("tbody");
    for (const it of part.items) {
      const tr = el("tr");
      const td = el("td");
      td.append(el("code", null, it.value));
      tr.append(el("th", null, it.name), td);
      tb.append(tr);
    }
    table.append(tb);
    return table;
  }

  function drawBlocks(part) {
    const box = el("div", "blocks");
    for (const row of part.rows) {
      const r = el("div", "blocks-row");
      r.append(el("span", "label", row.label));
      if (!row.blocks.length) r.append(el("span", "muted", "(no layers)"));
      for (const b of row.blocks) r.append(el("span", "block", b));
      box.append(r);
    }
    return box;
  }

  /** A DAG drawn left to right: nodes on a line, each edge an arc whose height grows with its span. */
  function drawGraph(part) {
    const idx = new Map(part.nodes.map((n, i) => [n.id, i]));
    const step = 150, pad = 50, r = 17;
    const maxSpan = Math.max(1, ...part.edges.map((e) => Math.abs(idx.get(e.dst) - idx.get(e.src))));
    const lift = (span) => (span <= 1 ? 0 : 34 * (span - 1) + 22);
    const half = lift(maxSpan) + r + 16;
    const width = pad * 2 + step * Math.max(1, part.nodes.length - 1);
    const height = 2 * half + 2 * r;
    const cy = height / 2;
    const x = (i) => pad + step * i;
    const svg = svgEl("svg", { class: "graph", viewBox: "0 0 " + width + " " + height, width, height,
                               role: "img", "aria-label": "graph " + part.name });
    const defs = svgEl("defs");
    const marker = svgEl("marker", { id: "as-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7,
                                     markerHeight: 7, orient: "auto-start-reverse" });
    marker.append(svgEl("path", { d: "M0,0 L10,5 L0,10 z", fill: "#2e6f9e" }));
    defs.append(marker);
    svg.append(defs);
    const labels = [];
    const seen = new Map();
    for (const e of part.edges) {
      const a = idx.get(e.src), b = idx.get(e.dst);
      const span = Math.abs(b - a);
      const k = seen.get(span) || 0;
      seen.set(span, k + 1);
      const side = (k + span) % 2 === 0 ? -1 : 1;
      const h = lift(span) * side;
      const x1 = x(a) + r, x2 = x(b) - r;
      const mx = (x(a) + x(b)) / 2;
      const d = span <= 1 ? "M" + x1 + "," + cy + " L" + x2 + "," + cy
        : "M" + (x(a) + r * 0.7) + "," + (cy + side * r * 0.7) + " Q" + mx + "," + (cy + 2 * h) + " " +
          (x(b) - r * 0.7) + "," + (cy + side * r * 0.7);
      const cls = e.dead ? "edge dead" : "edge";
      const attrs = { d, class: cls };
      if (!e.dead) attrs["marker-end"] = "url(#as-arrow)";
      const path = svgEl("path", attrs);
      path.append(svgEl("title", {}, (e.label ? e.label + ": " : "") + e.src + " \u2192 " + e.dst));
      svg.append(path);
      if (e.label) labels.push(svgEl("text", { x: mx, y: cy + h - (span <= 1 ? 10 : 0), class: e.dead ? "op dead" : "op" }, e.label));
    }
    part.nodes.forEach((n, i) => {
      const g = svgEl("g", { class: "node" });
      const w = Math.max(2 * r, 8 * String(n.label).length + 14);
      if (w > 2 * r) g.append(svgEl("rect", { x: x(i) - w / 2, y: cy - r, width: w, height: 2 * r, rx: r }));
      else g.append(svgEl("circle", { cx: x(i), cy, r }));
      g.append(svgEl("text", { x: x(i), y: cy }, n.label));
      svg.append(g);
    });
    for (const l of labels) svg.append(l);
    return svg;
  }

  window.ArchscoutDraw = { drawing };
})();
