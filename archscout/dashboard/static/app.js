/* archscout dashboard: a read-only view over a study storage, polled every second.
 *
 * Safety rule of this file: text that comes from a study (names, architecture strings, metric names, messages,
 * metadata) only ever reaches the page through textContent, setAttribute on inert attributes, or plotly after
 * esc() (plotly renders a subset of HTML in hover text, titles and tick labels). No innerHTML anywhere.
 */
"use strict";

(function () {
  const POLL_MS = 1000;
  const MAX_ROWS = 500;
  const COLORS = { trials: "#8c959f", front: "#bf3b3b", infeasible: "#e0823d", lowfid: "#7fb2d9", line: "#2e6f9e" };
  // ArchscoutDraw (draw.js) draws architectures

  const state = {
    studies: [], names: "", only: null, total: null,
    study: null, seq: 0, trials: new Map(), summary: null,
    view: null, trialNumber: null, trialSeq: -1,
    sort: { key: "number", dir: 1 },
    timer: null, busy: false, again: false,
  };

  // --- small helpers ------------------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);

  /** An element with properties/attributes and children (strings become text nodes). */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") node.textContent = String(v);
      else if (k === "class") node.className = v;
      else if (k === "href") node.setAttribute("href", v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
    return node;
  }

  /** HTML-escape text for plotly, which renders <b>, <br>, <a>, ... in its labels. */
  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  /** Escaped text cut into lines of at most n characters, joined with <br> (for hover boxes). */
  function wrap(s, n) {
    const text = String(s);
    const parts = [];
    for (let i = 0; i < text.length; i += n) parts.push(esc(text.slice(i, i + n)));
    return parts.join("<br>");
  }

  function fmt(v) {
    if (typeof v !== "number") return v === null || v === undefined ? "" : String(v);
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(5)));
  }

  function when(t) {
    return typeof t === "number" ? new Date(t * 1000).toLocaleString() : "";
  }

  function studyHash(name) { return "#/study/" + encodeURIComponent(name); }
  function trialHash(name, n) { return studyHash(name) + "/trial/" + n; }
  function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }

  async function getJSON(url) {
    const r = await fetch(url, { cache: "no-store", headers: { Accept: "application/json" } });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
    return body;
  }

  function setStatus(text, bad) {
    const s = $("status");
    s.textContent = text;
    s.classList.toggle("bad", !!bad);
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function emptyPlot(id, text) {
    const div = $(id);
    if (window.Plotly) Plotly.purge(div);
    clear(div);
    delete div.dataset.bound;
    div.append(el("p", { class: "empty", text }));
  }

  function plot(id, traces, layout, onClick) {
    const div = $(id);
    if (!window.Plotly) return;
    for (const p of div.querySelectorAll(":scope > p.empty")) p.remove();
    const base = { margin: { l: 60, r: 20, t: 10, b: 50 }, hovermode: "closest", uirevision: state.study,
                   legend: { orientation: "h", y: -0.18 }, font: { size: 12 } };
    Plotly.react(div, traces, Object.assign(base, layout),
                 { displaylogo: false, responsive: true, showLink: false, showSendToCloud: false,
                   modeBarButtonsToRemove: ["sendDataToCloud"] });
    if (onClick && !div.dataset.bound) {
      div.on("plotly_click", (ev) => {
        const p = ev && ev.points && ev.points[0];
        if (p && p.customdata !== undefined && p.customdata !== null) onClick(p.customdata);
      });
      div.dataset.bound = "1";
    }
  }

  // --- routing ------------------------------------------------------------------------------------------
  function parseRoute() {
    const m = /^#\/study\/([^/]*)(?:\/trial\/(-?\d+))?\/?$/.exec(location.hash);
    if (!m) return { view: "overview" };
    let name;
    try { name = decodeURIComponent(m[1]); } catch (e) { return { view: "overview" }; }
    return m[2] === undefined ? { view: "study", study: name } : { view: "trial", study: name, number: +m[2] };
  }

  function route() {
    let r = parseRoute();
    if (r.view === "overview" && state.studies.length === 1) r = { view: "study", study: state.studies[0].name };
    if (r.study !== undefined && r.study !== state.study) {
      state.study = r.study; state.seq = 0; state.trials = new Map(); state.summary = null;
    }
    if (r.view === "overview") state.study = null;
    state.view = r.view;
    state.trialNumber = r.view === "trial" ? r.number : null;
    state.trialSeq = -1;
    $("overview-view").hidden = r.view !== "overview";
    $("study-view").hidden = r.view !== "study";
    $("trial-view").hidden = r.view !== "trial";
    $("study-select").value = state.study || "";
    if (r.view === "overview") renderOverview();
    if (r.view === "study" && state.summary) renderStudy();
    if (r.view === "trial") { clearTrial(); }
    kick();
  }

  // --- polling ------------------------------------------------------------------------------------------
  function kick() {
    if (state.busy) { state.again = true; return; }
    clearTimeout(state.timer);
    tick();
  }

  async function tick() {
    state.busy = true;
    try {
      const counts = await getJSON("/api/count");
      const names = Object.keys(counts.studies).join("\u0000");
      if (names !== state.names || state.view === "overview") await loadStudies(names !== state.names);
      setCount(counts.total);
      if (state.study !== null) {
        const study = state.study;
        const r = await getJSON("/api/poll?study=" + encodeURIComponent(study) + "&after=" + state.seq);
        if (study === state.study && r.summary) {
          for (const t of r.trials) state.trials.set(t.number, t);
          state.summary = r.summary;
          state.seq = r.seq;
          if (state.view === "study") renderStudy();
        }
        setCount(r.total);
        if (state.view === "trial" && study === state.study) await loadTrial();
      }
      setStatus("live \u00b7 " + new Date().toLocaleTimeString());
    } catch (e) {
      setStatus("update failed (" + e.message + "); retrying", true);
    } finally {
      state.busy = false;
      const again = state.again;
      state.again = false;
      state.timer = setTimeout(tick, again ? 0 : POLL_MS);
    }
  }

  function setCount(n) {
    if (typeof n === "number" && n !== state.total) {
      state.total = n;
      $("trial-count").textContent = String(n);
    }
  }

  async function loadStudies(rebuildSelect) {
    const r = await getJSON("/api/studies");
    state.studies = r.studies;
    state.names = r.studies.map((s) => s.name).join("\u0000");
    state.only = r.only;
    $("storage").textContent = r.storage;
    if (rebuildSelect) {
      const sel = $("study-select");
      clear(sel);
      if (r.studies.length > 1) sel.append(el("option", { value: "", text: "all studies" }));
      for (const s of r.studies) sel.append(el("option", { value: s.name, text: s.name }));
      sel.value = state.study || "";
      if (state.view === null || (state.view === "overview" && r.studies.length === 1)) route();
    }
    if (state.view === "overview") renderOverview();
  }

  // --- overview -----------------------------------------------------------------------------------------
  function renderOverview() {
    const body = $("studies-table").tBodies[0];
    clear(body);
    for (const s of state.studies) {
      const c = s.counts || {};
      const best = s.best ? el("span", {}, el("a", { href: trialHash(s.name, s.best.number), text: "#" + s.best.number }),
        " " + s.objectives.map((o) => o.name + " " + fmt(s.best.metrics[o.name])).join(", ")) : "";
      body.append(el("tr", {},
        el("td", {}, el("a", { href: studyHash(s.name), text: s.name })),
        el("td", { class: "num", text: s.n_trials }),
        el("td", { class: "num", text: c.complete || 0 }), el("td", { class: "num", text: c.failed || 0 }),
        el("td", { class: "num", text: c.infeasible || 0 }), el("td", { class: "num", text: c.running || 0 }),
        el("td", { text: s.objectives.map((o) => o.name + " (" + o.direction + ")").join(", ") }),
        el("td", { text: s.space }), el("td", { text: s.strategy || "" }),
        el("td", { class: "num", text: s.front_size }), el("td", {}, best)));
    }
  }

  // --- study view ---------------------------------------------------------------------------------------
  function objLabel(o) {
    return o.name + (o.unit ? " [" + o.unit + "]" : "") + (o.direction === "max" ? " \u2191" : " \u2193");
  }

  function renderStudy() {
    const s = state.summary;
    if (!s) return;
    $("study-title").textContent = s.name;
    const cons = s.constraints.map((c) => c.name + " " + c.op + " " + fmt(c.bound)).join(", ") || "none";
    $("study-settings").textContent = "objectives " + s.objectives.map(objLabel).join(", ") + " \u00b7 constraints " +
      cons + " \u00b7 space " + s.space + " \u00b7 strategy " + (s.strategy || "?") + " \u00b7 seed " + s.seed +
      (s.fidelities ? " \u00b7 fidelities " + s.fidelities.join(", ") : "") +
      (Object.keys(s.metadata).length ? " \u00b7 metadata " + JSON.stringify(s.metadata) : "");
    const c = s.counts;
    const fails = Object.entries(s.failures).map(([k, v]) => v + " " + k).join(", ");
    $("study-counts").textContent = s.n_trials + " trials: " + (c.complete || 0) + " complete, " + (c.failed || 0) +
      " failed" + (fails ? " (" + fails + ")" : "") + ", " + (c.infeasible || 0) + " infeasible, " +
      (c.running || 0) + " running \u00b7 " + s.front.length + " on the Pareto front";
    $("study-note").hidden = !s.space_error;
    $("study-note").textContent = s.space_error || "";
    renderFront();
    renderAnytime();
    renderFailed();
    renderParcoords();
    renderTable();
  }

  /** Hover text of a trial: plotly renders it as HTML, so everything from the study is escaped. */
  function hoverText(t) {
    const lines = ["<b>Trial " + t.number + "</b> (" + esc(t.state) + ")", wrap(t.arch, 70)];
    for (const [k, v] of Object.entries(t.metrics)) lines.push(esc(k) + ": " + esc(fmt(v)));
    if (t.fidelity !== null) lines.push("fidelity: " + esc(fmt(t.fidelity)));
    return lines.join("<br>");
  }

  function trialGroup(t, front) {
    if (front.has(t.number)) return "front";
    if (t.state === "infeasible" || (t.state === "complete" && !t.feasible)) return "infeasible";
    if (t.state !== "complete") return null;
    return t.full ? "trials" : "lowfid";
  }

  function renderFront() {
    const s = state.summary;
    const objs = s.objectives;
    const front = new Set(s.front);
    const names = ["trials", "lowfid", "infeasible", "front"];
    const label = { trials: "feasible trials", lowfid: "lower fidelity", infeasible: "infeasible / over a constraint",
                    front: "Pareto front" };
    const dims = objs.length === 1 ? null : objs.slice(0, 3);
    const groups = Object.fromEntries(names.map((n) => [n, []]));
    const three = dims && dims.length === 3;
    const rug = [];  // 2-D: infeasible trials never trained, with only the x objective (their cost)
    let unplotted = 0;
    for (const t of state.trials.values()) {
      const g = trialGroup(t, front);
      if (g === null) continue;
      const vals = dims ? dims.map((o) => num(t.metrics[o.name])) : [num(t.metrics[objs[0].name])];
      if (vals.some((v) => v === null)) {
        if (g === "infeasible" && dims && !three && vals[1] !== null) rug.push({ t, vals });
        else if (g === "infeasible") unplotted += 1;
        continue;
      }
      groups[g].push({ t, vals });
    }
    $("front-title").textContent = objs.length === 1 ? "Trials (one objective: the best is marked)" :
      three ? "Pareto front (3-D)" : "Pareto front";
    const traces = [];
    for (const g of names) {
      let pts = groups[g];
      if (!pts.length && g !== "front") continue;
      if (g === "front" && dims && !three) pts = pts.slice().sort((a, b) => a.vals[1] - b.vals[1]);
      const tr = {
        type: three ? "scatter3d" : "scatter", mode: g === "front" && !three && dims ? "lines+markers" : "markers",
        name: label[g], customdata: pts.map((p) => p.t.number), hovertext: pts.map((p) => hoverText(p.t)),
        hoverinfo: "text",
        marker: { color: COLORS[g], size: g === "front" ? (three ? 5 : 10) : (three ? 3 : 7),
                  symbol: g === "infeasible" ? (three ? "x" : "x-thin-open") : "circle",
                  line: g === "infeasible" && !three ? { width: 2, color: COLORS[g] } : undefined },
      };
      if (!dims) { tr.x = pts.map((p) => p.t.number); tr.y = pts.map((p) => p.vals[0]); }
      else if (three) { tr.x = pts.map((p) => p.vals[1]); tr.y = pts.map((p) => p.vals[2]); tr.z = pts.map((p) => p.vals[0]); }
      else { tr.x = pts.map((p) => p.vals[1]); tr.y = pts.map((p) => p.vals[0]); }
      if (g === "front") { tr.uid = "front"; tr.line = { color: COLORS.front, width: 1.5 }; if (!dims) tr.name = "best"; }
      if (g === "front" && rug.length) {
        traces.push({ type: "scatter", mode: "markers", name: "infeasible, not trained (at its cost)", uid: "rug",
          x: rug.map((p) => p.vals[1]), y: rug.map(() => 0.02), yaxis: "y2", customdata: rug.map((p) => p.t.number),
          hovertext: rug.map((p) => hoverText(p.t)), hoverinfo: "text",
          marker: { symbol: "line-ns-open", size: 14, color: COLORS.infeasible, line: { width: 2 } } });
      }
      traces.push(tr);
    }
    if (!traces.some((t) => t.x.length && t.uid !== "rug")) { emptyPlot("front-plot", "no complete trial yet"); }
    else {
      let layout;
      if (three) {
        layout = { margin: { l: 0, r: 0, t: 0, b: 40 }, scene: { xaxis: { title: { text: esc(objLabel(dims[1])) } },
                            yaxis: { title: { text: esc(objLabel(dims[2])) } },
                            zaxis: { title: { text: esc(objLabel(dims[0])) } } } };
      } else {
        layout = { xaxis: { title: { text: dims ? esc(objLabel(dims[1])) : "trial" }, zeroline: false },
                   yaxis: { title: { text: esc(objLabel(dims ? dims[0] : objs[0])) }, zeroline: false },
                   yaxis2: { overlaying: "y", range: [0, 1], visible: false, fixedrange: true } };
        for (const c of s.constraints) {
          const axis = dims && c.name === dims[1].name ? "x" : c.name === (dims ? dims[0] : objs[0]).name ? "y" : null;
          if (!axis) continue;
          layout.shapes = (layout.shapes || []).concat([axis === "x"
            ? { type: "line", xref: "x", yref: "paper", x0: c.bound, x1: c.bound, y0: 0, y1: 1, line: { dash: "dash", width: 1 } }
            : { type: "line", xref: "paper", yref: "y", x0: 0, x1: 1, y0: c.bound, y1: c.bound, line: { dash: "dash", width: 1 } }]);
        }
      }
      plot("front-plot", traces, layout, (n) => { location.hash = trialHash(state.study, n); });
    }
    const notes = ["click a point to open its trial"];
    if (objs.length > 3) notes.push("the first three of " + objs.length + " objectives are drawn");
    if (unplotted) notes.push(unplotted + " infeasible trial(s) lack a drawn objective (never trained): see the table");
    if (s.fidelities) notes.push("only full-fidelity trials count for the front");
    $("front-note").textContent = notes.join(" \u00b7 ");
  }

  function renderAnytime() {
    const a = state.summary.anytime;
    $("anytime-title").textContent = a.kind === "best" ? "Anytime: " + a.label : "Anytime: hypervolume";
    $("anytime-note").textContent = (a.note || "") + (a.ref ? " (" + a.ref.map(fmt).join(", ") + ")" : "");
    const xs = [], ys = [];
    a.x.forEach((x, i) => { if (a.y[i] !== null) { xs.push(x); ys.push(a.y[i]); } });
    if (!xs.length) { emptyPlot("anytime-plot", "no feasible complete trial yet"); return; }
    plot("anytime-plot", [{ type: "scatter", mode: "lines", line: { shape: "hv", color: COLORS.line }, x: xs, y: ys,
                            name: esc(a.label), hovertemplate: "%{y}<extra>after %{x} trials</extra>" }],
         { xaxis: { title: { text: "finished trials" }, range: [0, a.x[a.x.length - 1]] }, yaxis: { title: { text: esc(a.label) } }, showlegend: false });
  }

  function renderFailed() {
    const ul = $("failed-list");
    clear(ul);
    const failed = [...state.trials.values()].filter((t) => t.state === "failed");
    if (!failed.length) { ul.append(el("li", { class: "muted", text: "none" })); return; }
    for (const t of failed.slice(-200).reverse()) {
      ul.append(el("li", {}, el("a", { href: trialHash(state.study, t.number), text: "#" + t.number }),
        " ", el("span", { class: "muted", text: t.failure || "error" }), " ", el("span", { text: t.error })));
    }
  }

  function renderParcoords() {
    const s = state.summary;
    const objs = s.objectives;
    const rows = [...state.trials.values()].filter((t) => t.state === "complete" && t.p &&
      objs.every((o) => num(t.metrics[o.name]) !== null));
    $("parcoords-note").textContent = s.axes.length ? "" : "the study's space cannot be drawn here";
    if (!rows.length) { emptyPlot("parcoords-plot", "no complete trial yet"); return; }
    const dims = s.axes.map((ax, i) => {
      const values = rows.map((t) => (t.p[i] === null ? -1 : t.p[i]));
      if (!ax.ticktext) return { label: esc(ax.label), values };
      const missing = values.some((v) => v < 0);
      const tickvals = ax.ticktext.map((_, k) => k);
      const ticktext = ax.ticktext.slice();  // parcoords draws tick labels as plain text (labels as HTML)
      if (missing) { tickvals.unshift(-1); ticktext.unshift("\u2013"); }
      return { label: esc(ax.label), values, tickvals, ticktext,
               range: [missing ? -1 : 0, Math.max(ax.ticktext.length - 1, missing ? 0 : 1)] };
    });
    for (const o of objs) dims.push({ label: esc(objLabel(o)), values: rows.map((t) => t.metrics[o.name]) });
    const crowded = dims.length > 10;
    plot("parcoords-plot", [{ type: "parcoords", dimensions: dims, labelangle: crowded ? -30 : 0,
      labelside: "top",
      line: { color: rows.map((t) => t.metrics[objs[0].name]), colorscale: "Viridis", showscale: true,
              reversescale: objs[0].direction === "min", colorbar: { title: { text: esc(objs[0].name) }, x: 1.04 } } }],
         { margin: { l: 70, r: 110, t: crowded ? 120 : 60, b: 30 } });
  }

  // --- trial table --------------------------------------------------------------------------------------
  function tableColumns() {
    const s = state.summary;
    const cols = [{ key: "number", label: "#", num: true }, { key: "state", label: "state" }];
    for (const m of s.metric_names) cols.push({ key: "m:" + m, label: m, num: true });
    if (s.fidelities) cols.push({ key: "fidelity", label: "fidelity", num: true });
    cols.push({ key: "arch", label: "architecture" }, { key: "error", label: "failure" });
    return cols;
  }

  function cellValue(t, key) {
    if (key.startsWith("m:")) return t.metrics[key.slice(2)];
    if (key === "state") return t.failure ? t.state + " (" + t.failure + ")" : t.state;
    return t[key];
  }

  function compare(a, b) {
    const an = typeof a === "number", bn = typeof b === "number";
    if (an && bn) return a - b;
    if (an !== bn) return an ? -1 : 1;
    return String(a).localeCompare(String(b));
  }

  function renderTable() {
    const s = state.summary;
    const cols = tableColumns();
    const table = $("trial-table");
    const head = el("tr");
    for (const c of cols) {
      const arrow = state.sort.key === c.key ? (state.sort.dir > 0 ? " \u25b2" : " \u25bc") : "";
      head.append(el("th", { "aria-sort": state.sort.key === c.key ? (state.sort.dir > 0 ? "ascending" : "descending") : "none" },
        el("button", { type: "button", text: c.label + arrow, "data-key": c.key, onclick: () => {
          state.sort = { key: c.key, dir: state.sort.key === c.key ? -state.sort.dir : 1 };
          renderTable();
        } })));
    }
    clear(table.tHead);
    table.tHead.append(head);
    const front = new Set(s.front);
    const text = $("table-filter").value.trim().toLowerCase();
    const want = $("state-filter").value;
    let rows = [...state.trials.values()].filter((t) => {
      if (want === "front" ? !front.has(t.number) : want && t.state !== want) return false;
      if (!text) return true;
      return [String(t.number), t.state, t.failure || "", t.arch, t.error || ""].some((v) => v.toLowerCase().includes(text));
    });
    const { key, dir } = state.sort;
    const blank = (v) => v === undefined || v === null || v === "";
    rows.sort((a, b) => {  // blanks last in either direction, ties by trial number
      const va = cellValue(a, key), vb = cellValue(b, key);
      if (blank(va) !== blank(vb)) return blank(va) ? 1 : -1;
      return (blank(va) ? 0 : compare(va, vb) * dir) || a.number - b.number;
    });
    const total = rows.length;
    rows = rows.slice(0, MAX_ROWS);
    const body = el("tbody");
    for (const t of rows) {
      const tr = el("tr", { class: front.has(t.number) ? "front" : null, "data-number": t.number });
      for (const c of cols) {
        const v = cellValue(t, c.key);
        if (c.key === "number") tr.append(el("td", { class: "num" }, el("a", { href: trialHash(state.study, t.number), text: t.number })));
        else if (c.key === "arch") tr.append(el("td", {}, el("code", { text: v })));
        else tr.append(el("td", { class: c.num ? "num" : null, text: fmt(v) }));
      }
      body.append(tr);
    }
    table.replaceChild(body, table.tBodies[0]);
    $("table-note").textContent = total > MAX_ROWS ? "showing " + MAX_ROWS + " of " + total + " matching trials"
      : total + " of " + state.trials.size + " trials";
  }

  // --- trial view ---------------------------------------------------------------------------------------
  function clearTrial() {
    $("trial-number").textContent = state.trialNumber === null ? "" : String(state.trialNumber);
    for (const id of ["trial-state", "trial-arch", "trial-error", "trial-failure"]) $(id).textContent = "";
    clear($("trial-metrics").tBodies[0]);
    clear($("trial-info").tBodies[0]);
    clear($("trial-drawing"));
    $("trial-error-panel").hidden = true;
    $("trial-front").hidden = true;
    $("back-link").setAttribute("href", state.study === null ? "#/" : studyHash(state.study));
  }

  async function loadTrial() {
    const n = state.trialNumber;
    const known = state.trials.get(n);
    if (known && known.seq === state.trialSeq) return;
    let t;
    try {
      t = await getJSON("/api/trial?study=" + encodeURIComponent(state.study) + "&number=" + n);
    } catch (e) {
      $("trial-state").textContent = e.message;
      return;
    }
    if (n !== state.trialNumber || t.study !== state.study) return;
    state.trialSeq = t.seq;
    renderTrial(t);
  }

  function renderTrial(t) {
    const s = state.summary;
    $("trial-number").textContent = String(t.number);
    $("trial-state").textContent = t.state;
    $("trial-state").className = "badge " + t.state;
    $("trial-front").hidden = !t.on_front;
    $("trial-arch").textContent = t.arch;
    document.title = "Trial " + t.number + " \u00b7 archscout";
    const objs = s ? s.objectives : [];
    const mt = $("trial-metrics").tBodies[0];
    clear(mt);
    const metricNames = objs.map((o) => o.name).filter((k) => k in t.metrics)
      .concat(Object.keys(t.metrics).filter((k) => !objs.some((o) => o.name === k)));
    if (!metricNames.length) mt.append(el("tr", {}, el("td", { class: "muted", text: "no metrics" })));
    for (const k of metricNames) {
      const o = objs.find((x) => x.name === k);
      const cons = s ? s.constraints.filter((c) => c.name === k) : [];
      const notes = [o ? "objective (" + o.direction + ")" : ""].concat(cons.map((c) => c.op + " " + fmt(c.bound)));
      mt.append(el("tr", {}, el("th", { text: k }), el("td", { class: "num", text: fmt(t.metrics[k]) }),
        el("td", { class: "muted", text: notes.filter(Boolean).join(", ") })));
    }
    const info = $("trial-info").tBodies[0];
    clear(info);
    const rows = [["fidelity", t.fidelity === null ? "full" : fmt(t.fidelity)], ["attempt", t.attempt],
      ["retry of", t.retry_of === null || t.retry_of === undefined ? "" : "#" + t.retry_of],
      ["started", when(t.started_at)], ["finished", when(t.finished_at)],
      ["duration", typeof t.finished_at === "number" && typeof t.started_at === "number"
        ? fmt(t.finished_at - t.started_at) + " s" : ""],
      ["functional hash", t.functional_hash || ""], ["driver", t.driver || ""]];
    for (const [k, v] of rows) if (v !== "") info.append(el("tr", {}, el("th", { text: k }), el("td", { text: v })));
    const failed = t.state === "failed" || !!t.error_full;
    $("trial-error-panel").hidden = !failed;
    $("trial-failure").textContent = t.failure ? "(" + t.failure + ")" : "";
    $("trial-error").textContent = t.error_full || t.error || "";
    renderDrawing(t.drawing);
    renderFidelity(t, objs);
  }

  function renderFidelity(t, objs) {
    $("fidelity-panel").hidden = !(state.summary && state.summary.fidelities) && t.fidelity_curve.length < 2;
    const pts = t.fidelity_curve.filter((u) => u.fidelity !== null && u.state === "complete");
    if (pts.length < 2 || !objs.length) {
      emptyPlot("fidelity-plot", "no fidelity curve: this architecture was evaluated at " +
        (pts.length ? "one fidelity" : "full fidelity only"));
      $("fidelity-note").textContent = "";
      return;
    }
    const traces = objs.filter((o) => pts.some((u) => num(u.metrics[o.name]) !== null)).map((o, i) => ({
      type: "scatter", mode: "lines+markers", name: esc(objLabel(o)), yaxis: i ? "y2" : "y",
      x: pts.map((u) => u.fidelity), y: pts.map((u) => num(u.metrics[o.name])), customdata: pts.map((u) => u.number),
      hovertemplate: "trial %{customdata}: %{y}<extra>" + esc(o.name) + "</extra>",
    }));
    const layout = { xaxis: { title: { text: "fidelity" } }, yaxis: { title: { text: esc(objs[0].name) } } };
    if (traces.length > 1) layout.yaxis2 = { overlaying: "y", side: "right", title: { text: esc(objs[1].name) } };
    plot("fidelity-plot", traces.slice(0, 2), layout, (n) => { location.hash = trialHash(state.study, n); });
    $("fidelity-note").textContent = "every trial of this architecture, by fidelity (click one to open it)";
  }

  function renderDrawing(parts) {
    const box = $("trial-drawing");
    clear(box);
    if (!parts.length) { box.append(el("p", { class: "muted", text: "the study's space cannot be rebuilt here" })); return; }
    box.append(window.ArchscoutDraw.drawing(parts));
  }

  // --- start --------------------------------------------------------------------------------------------
  function start() {
    $("study-select").addEventListener("change", (ev) => {
      const v = ev.target.value;
      location.hash = v ? studyHash(v) : "#/";
    });
    $("table-filter").addEventListener("input", () => { if (state.summary) renderTable(); });
    $("state-filter").addEventListener("change", () => { if (state.summary) renderTable(); });
    window.addEventListener("hashchange", route);
    // plotly.min.js loads asynchronously: draw (again) once it is there
    const pj = $("plotly-js");
    if (!window.Plotly && pj) {
      pj.addEventListener("load", () => {
        if (state.view === "study" && state.summary) renderStudy();
        if (state.view === "trial") { state.trialSeq = -1; kick(); }
      });
      pj.addEventListener("error", () => setStatus("plotly.min.js did not load; plots are off", true));
    }
    loadStudies(true).then(() => { if (state.view === null) route(); }).catch((e) => {
      setStatus("cannot reach the dashboard server (" + e.message + ")", true);
      state.timer = setTimeout(tick, POLL_MS);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
