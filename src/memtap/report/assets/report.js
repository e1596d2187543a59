/* memtap report: draws the document in #memtap-data (the same numbers `memtap report --json` writes) with
 * plotly.js and plain DOM tables. Addresses above 2^53 arrive as "0x..." strings; BigInt keeps them exact. */
"use strict";

const DOC = JSON.parse(document.getElementById("memtap-data").textContent);
const KINDS = ["fetch", "load", "store"];
const KIND_COLOURS = {fetch: "#4c78a8", load: "#59a14f", store: "#e15759", marker: "#9c755f", cmo: "#b07aa1",
                      exception: "#f28e2b", syscall: "#76b7b2"};
const PLOT_CONFIG = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["toImage"]};
const pending = [];

function big(v) { return typeof v === "bigint" ? v : BigInt(v); }
function hex(v) { return "0x" + big(v).toString(16); }
function num(v) { return v === null || v === undefined ? "-" : Number(v).toLocaleString("en-US"); }
function pct(a, b) { return b ? (100 * a / b).toFixed(1) + "%" : "-"; }

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function section(id, title) {
  const s = el("section", {id: id}, el("h2", {}, title));
  document.getElementById("main").append(s);
  document.getElementById("nav").append(el("a", {href: "#" + id}, title));
  return s;
}

function unavailable(parent, key) {
  const why = DOC.unavailable[key];
  if (why) parent.append(el("p", {class: "unavailable"}, "Not shown: " + why + "."));
  return !!why;
}

function plot(parent, id, traces, layout) {
  const div = el("div", {class: "plot", id: id});
  parent.append(div);
  layout = Object.assign({margin: {l: 70, r: 20, t: 30, b: 40}, font: {size: 12}, hovermode: "closest"}, layout);
  pending.push(Plotly.newPlot(div, traces, layout, PLOT_CONFIG).then(() => div));
  return div;
}

function r0(row, c) { return Number(row[c.key]) || 0; }

/* A sortable table: columns are {key, title, type: "num"|"text"|"hex", bar: bool}; rows are objects. */
function table(parent, columns, rows, sortKey) {
  const wrap = el("div", {class: "tablewrap"});
  const t = el("table");
  const head = el("tr");
  const body = el("tbody");
  const max = {};
  for (const c of columns) if (c.bar) max[c.key] = c.barMax || Math.max(1, ...rows.map(r => Number(r[c.key]) || 0));
  let state = {key: sortKey || null, desc: true};
  function cell(c, r) {
    const v = c.value ? c.value(r) : r[c.key];
    if (c.type === "hex") return el("td", {class: "mono"}, v === null || v === undefined ? "-" : hex(v));
    if (c.type === "text") return el("td", {class: "text"}, v === null || v === undefined ? "" : v);
    return el("td", {}, num(v));
  }
  function draw() {
    const sorted = rows.slice();
    if (state.key) {
      const c = columns.find(c => c.key === state.key);
      const get = r => (c.value ? c.value(r) : r[c.key]);
      sorted.sort((a, b) => {
        let x = get(a), y = get(b);
        if (c.type === "hex") { x = big(x); y = big(y); return (x < y ? -1 : x > y ? 1 : 0) * (state.desc ? -1 : 1); }
        if (c.bar) { x = r0(a, c); y = r0(b, c); }
        else if (c.type === "text") return String(x).localeCompare(String(y)) * (state.desc ? -1 : 1);
        return ((Number(x) || 0) - (Number(y) || 0)) * (state.desc ? -1 : 1);
      });
    }
    body.replaceChildren(...sorted.map(r => {
      const tr = el("tr");
      for (const c of columns) {
        tr.append(cell(c, r));
        if (c.bar) {
          const w = (100 * (Number(r[c.key]) || 0) / max[c.key]).toFixed(1);
          const bar = el("div");
          bar.style.width = w + "%";
          tr.append(el("td", {class: "bar"}, bar));
        }
      }
      return tr;
    }));
    for (const th of head.children) {
      th.classList.toggle("sorted-desc", th.dataset.key === state.key && state.desc);
      th.classList.toggle("sorted-asc", th.dataset.key === state.key && !state.desc);
    }
  }
  for (const c of columns) {
    const th = el("th", {class: c.type === "text" ? "text" : ""}, c.title);
    th.dataset.key = c.key;
    th.addEventListener("click", () => {
      state = {key: c.key, desc: state.key === c.key ? !state.desc : c.bar || c.type !== "text"};
      draw();
    });
    head.append(th);
    if (c.bar) head.append(el("th", {class: "text"}, ""));
  }
  t.append(el("thead", {}, head), body);
  wrap.append(t);
  parent.append(wrap);
  draw();
  return t;
}

/* Time axis: bin i starts at position (first_bin + i) << shift. */
function binStarts(time) {
  const w = 2 ** time.shift;
  return Array.from({length: time.bins}, (_, i) => (time.first_bin + i) * w);
}

/* Plots whose x axis is the trace's time follow each other's zoom. */
const timePlots = [];
let linking = false;
function linkTime(div) {
  timePlots.push(div);
  div.on("plotly_relayout", ev => {
    if (linking) return;
    const lo = ev["xaxis.range[0]"], hi = ev["xaxis.range[1]"];
    const auto = ev["xaxis.autorange"];
    if (lo === undefined && !auto) return;
    linking = true;
    const update = auto ? {"xaxis.autorange": true} : {"xaxis.range": [lo, hi]};
    Promise.all(timePlots.filter(d => d !== div).map(d => Plotly.relayout(d, update))).finally(() => { linking = false; });
  });
}

function overview() {
  const o = DOC.overview;
  const s = section("overview", "Overview");
  document.getElementById("subtitle").textContent = o.trace + " (" + (o.target || "unknown target") + ")";
  const sel = o.selection || {};
  const selText = [sel.pos_range ? "positions " + (sel.pos_range[0] ?? "") + ":" + (sel.pos_range[1] ?? "") : null,
                   sel.vcpus ? "vCPUs " + sel.vcpus.join(",") : null].filter(x => x).join(", ") || "the whole trace";
  const facts = [
    ["target", o.target || "unknown"], ["QEMU", o.qemu_version || "unknown"],
    ["recorded by", "memtap " + (o.recorded_by || "?")], ["reported by", "memtap " + o.reported_by],
    ["QEMU command", o.qemu_command || "unknown"], ["report command", o.report_command || "(from Python)"],
    ["recorded", o.start_time || "unknown"],
    ["trace", o.complete ? "complete" : "TRUNCATED: the recording did not finish (records up to the last whole chunk)"],
    ["events recorded", o.events_recorded ? o.events_recorded.join(", ") : "unknown"],
    ["selection", selText], ["records", num(o.records)],
    ["positions", o.pos_range ? num(o.pos_range[0]) + " .. " + num(o.pos_range[1]) : "-"],
    ["instructions executed", o.executed_insns === null || o.executed_insns === undefined ? "unknown" : num(o.executed_insns) + " (whole run, from the trace's END chunk)"],
  ];
  const dl = el("dl", {class: "facts"});
  for (const [k, v] of facts) dl.append(el("dt", {}, k), el("dd", {}, v));
  s.append(dl);
  const grid = el("div", {class: "grid"});
  s.append(grid);
  const kinds = Object.entries(o.by_kind).map(([k, v]) => ({kind: k, records: v}));
  const g1 = el("div", {}, el("h3", {}, "Records by kind"));
  table(g1, [{key: "kind", title: "kind", type: "text"}, {key: "records", title: "records", bar: true}], kinds);
  const vcpus = Object.entries(o.by_vcpu).map(([v, d]) => Object.assign({vcpu: v}, d));
  const g2 = el("div", {}, el("h3", {}, "Records by vCPU"));
  table(g2, [{key: "vcpu", title: "vCPU", type: "text"}, {key: "records", title: "records", bar: true},
             ...Object.keys(o.by_kind).map(k => ({key: k, title: k})),
             {key: "icount_first", title: "first icount"}, {key: "icount_last", title: "last icount"}], vcpus);
  const privs = Object.entries(o.by_priv).map(([p, v]) => ({priv: p, records: v}));
  const g3 = el("div", {}, el("h3", {}, "Records by privilege"));
  table(g3, [{key: "priv", title: "privilege", type: "text"}, {key: "records", title: "records", bar: true}], privs);
  grid.append(g1, g2, g3);
  if (DOC.time) {
    s.append(el("h3", {}, "Records per time bin"));
    s.append(el("p", {class: "how"}, "Time is the record position, one global order over all vCPUs; a bin holds " +
      num(2 ** DOC.time.shift) + " positions."));
    const x = binStarts(DOC.time);
    const traces = Object.entries(DOC.time.by_kind).filter(([, v]) => v.some(c => c)).map(([k, v]) => (
      {type: "scatter", mode: "lines", name: k, x: x, y: v, line: {width: 1.5, color: KIND_COLOURS[k], shape: "hv"}}));
    const div = plot(s, "plot-time", traces, {height: 260, xaxis: {title: {text: "position"}},
                                               yaxis: {title: {text: "records"}}, legend: {orientation: "h"}});
    pending[pending.length - 1] = pending[pending.length - 1].then(d => { linkTime(d); return d; });
    div.dataset.kind = "time";
  }
}

/* Dense z (log10 of the count; null where 0) and the counts, rows x bins, of one region and kind. */
function regionGrid(region, kind, bins) {
  const z = Array.from({length: region.rows}, () => new Array(bins).fill(null));
  const n = Array.from({length: region.rows}, () => new Array(bins).fill(0));
  const c = region.cells;
  for (let i = 0; i < c.row.length; i++) {
    const v = kind === "all" ? c.fetch[i] + c.load[i] + c.store[i] : c[kind][i];
    if (v) { n[c.row[i]][c.bin[i]] = v; z[c.row[i]][c.bin[i]] = Math.log10(v); }
  }
  return {z: z, n: n};
}

function heatmapSection() {
  const s = section("heatmap", "Address x time");
  const h = DOC.heatmap;
  if (unavailable(s, "heatmap") || !h) {
    eventsSummary(s);
    return;
  }
  s.append(el("p", {class: "how"}, "Accesses per address range and time bin, one panel per region (regions " +
    h.regions_how + "). A cell counts the accesses whose first byte it holds; colour is logarithmic. All panels share " +
    "the time axis: zoom one and the others follow. Markers, exceptions and system calls are drawn below."));
  const controls = el("div", {class: "controls"}, "show: ");
  const names = {all: " all accesses", fetch: " fetches", load: " loads", store: " stores"};
  for (const [k, text] of Object.entries(names)) {
    const input = el("input", {type: "radio", name: "heatkind", id: "kind-" + k, value: k});
    input.checked = k === "all";
    controls.append(el("label", {for: "kind-" + k}, input, text));
  }
  s.append(controls);
  const time = DOC.time;
  const x = binStarts(time).map(v => v + 2 ** time.shift / 2);
  const regions = h.regions.slice().reverse();   // highest addresses on top
  const ev = eventTraces();
  const heights = regions.map(r => Math.max(90, Math.min(300, 40 + 2 * r.rows)));
  const evHeight = ev.traces.length ? 90 : 0;
  const gap = 24;
  const total = heights.reduce((a, b) => a + b, 0) + evHeight + gap * (regions.length + (ev.traces.length ? 1 : 0));
  const traces = [];
  const layout = {height: total + 70, margin: {l: 150, r: 20, t: 20, b: 50}, showlegend: false,
                  xaxis: {title: {text: "position"}, anchor: ev.traces.length ? "y" + (regions.length + 1) : "y" + regions.length}};
  let top = 1;
  const maxLog = Math.max(1, ...h.regions.map(r => Math.log10(Math.max(1, ...r.cells.fetch.map((f, i) => f + r.cells.load[i] + r.cells.store[i])))));
  regions.forEach((r, i) => {
    const hgt = heights[i] / total;
    const dom = [Math.max(0, top - hgt), top];
    top -= hgt + gap / total;
    const axis = i === 0 ? "" : String(i + 1);
    const grid = regionGrid(r, "all", time.bins);
    const rowBytes = big(r.row_bytes);
    const labels = Array.from({length: r.rows}, (_, k) => hex(big(r.lo) + BigInt(k) * rowBytes));
    const step = Math.max(1, Math.ceil(r.rows / Math.max(2, Math.floor(heights[i] / 22))));
    const ticks = labels.map((_, k) => k).filter(k => k % step === 0);
    layout["yaxis" + axis] = {domain: dom, anchor: "x", tickvals: ticks, ticktext: ticks.map(k => labels[k]),
      range: [-0.5, r.rows - 0.5], zeroline: false, tickfont: {family: "DejaVu Sans Mono, monospace", size: 10},
      title: {text: r.class + (r.sections ? " (" + r.sections + ")" : ""), font: {size: 11}, standoff: 4}};
    traces.push({type: "heatmap", x: x, y: labels.map((_, k) => k), z: grid.z, customdata: grid.n,
      text: labels.map(l => new Array(time.bins).fill(l)), xaxis: "x", yaxis: "y" + axis,
      zmin: 0, zmax: maxLog, colorscale: "Viridis", showscale: i === 0, hoverongaps: false,
      colorbar: {title: {text: "accesses"}, tickvals: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].filter(t => t <= maxLog),
                 ticktext: ["1", "10", "100", "1k", "10k", "100k", "1M", "10M", "100M", "1G"], len: 0.5, y: 1, yanchor: "top"},
      hovertemplate: "address %{text}<br>position %{x}<br>%{customdata} accesses<extra>" + r.class + "</extra>"});
  });
  if (ev.traces.length) {
    const axis = String(regions.length + 1);
    layout["yaxis" + axis] = {domain: [0, evHeight / total], anchor: "x", title: {text: ev.title, font: {size: 11}}};
    for (const t of ev.traces) traces.push(Object.assign(t, {xaxis: "x", yaxis: "y" + axis}));
    layout.showlegend = true;
    layout.legend = {orientation: "h", y: -0.02, yanchor: "top"};
  }
  layout.shapes = ev.shapes;
  const div = plot(s, "plot-heatmap", traces, layout);
  div.dataset.kind = "heatmap";
  pending[pending.length - 1] = pending[pending.length - 1].then(d => { linkTime(d); return d; });
  controls.addEventListener("change", e => {
    const kind = e.target.value;
    const grids = regions.map(r => regionGrid(r, kind, time.bins));
    Plotly.restyle(div, {z: grids.map(g => g.z), customdata: grids.map(g => g.n)}, regions.map((_, i) => i));
  });
  eventsSummary(s);
}

/* Markers, exceptions and system calls on the time axis: one point per record when few, counts per bin when
 * there are more than the document holds. */
function eventTraces() {
  const traces = [];
  const shapes = [];
  const time = DOC.time;
  const x = binStarts(time);
  let points = false;
  for (const [kind, e] of Object.entries(DOC.events)) {
    if (!e.count) continue;
    if (e.drawn) {
      points = true;
      traces.push({type: "scatter", mode: "markers", name: kind, x: e.drawn.map(d => d.pos), y: e.drawn.map(d => d.vcpu),
        marker: {color: KIND_COLOURS[kind], size: 8, symbol: kind === "marker" ? "triangle-down" : "x"},
        text: e.drawn.map(d => kind === "marker" ? "MEMTAP_MARK(" + d.value + ")" :
          kind === "exception" ? (d.interrupt ? "interrupt" : "exception") + (d.cause !== null ? " cause " + d.cause : "") +
            (d.from !== null ? " from " + hex(d.from) : "") : kind + " " + d.value),
        hovertemplate: "%{text}<br>vCPU %{y}, position %{x}<extra>" + kind + "</extra>"});
      if (e.drawn.length <= 50) for (const d of e.drawn) shapes.push({type: "line", xref: "x", yref: "paper", x0: d.pos, x1: d.pos,
        y0: 0, y1: 1, line: {color: KIND_COLOURS[kind], width: 1, dash: "dot"}, opacity: 0.6});
    } else {
      traces.push({type: "bar", name: kind + " per bin", x: x.map(v => v + 2 ** time.shift / 2), y: time.by_kind[kind],
        marker: {color: KIND_COLOURS[kind]}, hovertemplate: "%{y} " + kind + "s<extra></extra>"});
    }
  }
  return {traces: traces, shapes: shapes, title: points ? "vCPU" : "records"};
}

function eventsSummary(s) {
  const rows = Object.entries(DOC.events).map(([kind, e]) => ({kind: kind, count: e.count,
    how: !e.recorded ? "none recorded: this trace format has no " + kind + " records yet" :
      !e.count ? "none recorded" : e.drawn ? "each drawn" : "too many to draw one by one: counts per time bin"}));
  s.append(el("h3", {}, "On the time axis"));
  table(s, [{key: "kind", title: "kind", type: "text"}, {key: "count", title: "records"},
            {key: "how", title: "shown", type: "text"}], rows);
}

function unitSection(id, title, data, unit) {
  const s = section(id, title);
  s.append(el("p", {class: "how"}, "Touches per " + unit + " (" + num(data.unit_bytes) + " bytes): an access that " +
    "straddles two " + unit + "s touches both. " + num(data.distinct) + " " + unit + "s touched, " +
    num(data.distinct_data) + " by loads or stores, " + num(data.distinct_fetched) + " by fetches" +
    (data.rows.length < data.distinct ? "; the " + data.rows.length + " hottest shown." : ".")));
  const cols = [{key: "address", title: unit, type: "hex"}, {key: "total", title: "touches", bar: true},
                ...KINDS.map(k => ({key: k, title: k}))];
  if (id === "pages") cols.push({key: "io", title: "MMIO"});
  else cols.push({key: "readers", title: "readers", type: "text", value: r => r.readers.join(",")},
                 {key: "writers", title: "writers", type: "text", value: r => r.writers.join(",")});
  table(s, cols, data.rows, "total");
}

function profileSection(id, title, key, unit) {
  const s = section(id, title);
  if (unavailable(s, key) || !DOC[key]) return;
  s.append(el("p", {class: "how"}, "Executed instructions (fetch records), loads and stores per " + unit +
    ", as memtap profile counts them; the " + DOC[key].rows.length + " with the most executed instructions."));
  table(s, [{key: "name", title: key === "functions" ? "function" : "source line", type: "text"},
            {key: "where", title: key === "functions" ? "source" : "function", type: "text"},
            {key: "executed", title: "executed", bar: true}, {key: "loads", title: "loads"},
            {key: "stores", title: "stores"}], DOC[key].rows, "executed");
}

function cacheSection() {
  const s = section("cache", "Cache");
  if (unavailable(s, "cache") || !DOC.cache) return;
  const c = DOC.cache;
  s.append(el("p", {class: "how"}, "The cache simulator (" + c.config + ") run over the trace in its global order; " +
    "miss rate per level and time bin (no point where a level had no access in a bin)."));
  table(s, [{key: "name", title: "level", type: "text"}, {key: "size", title: "bytes"}, {key: "ways", title: "ways"},
            {key: "line", title: "line"}, {key: "side", title: "side", type: "text"}, {key: "accesses", title: "accesses"},
            {key: "misses", title: "misses"}, {key: "rate", title: "miss rate", type: "text", value: r => pct(r.misses, r.accesses)}],
        c.levels);
  const x = binStarts(DOC.time).map(v => v + 2 ** DOC.time.shift / 2);
  const traces = c.levels.map(l => ({type: "scatter", mode: "lines+markers", name: l.name, x: x, marker: {size: 3},
    y: l.per_bin.accesses.map((a, i) => a ? l.per_bin.misses[i] / a : null),
    customdata: l.per_bin.accesses.map((a, i) => [l.per_bin.misses[i], a]),
    hovertemplate: "%{customdata[0]} of %{customdata[1]} missed<extra>" + l.name + "</extra>"}));
  const div = plot(s, "plot-cache", traces, {height: 300, xaxis: {title: {text: "position"}},
    yaxis: {title: {text: "miss rate"}, tickformat: ".0%", rangemode: "tozero"}, legend: {orientation: "h"}});
  div.dataset.kind = "cache";
  pending[pending.length - 1] = pending[pending.length - 1].then(d => { linkTime(d); return d; });
  for (const level of c.top_levels) {
    const mk = "misses_" + level;
    if (c.functions) {
      s.append(el("h3", {}, "Functions with the most " + level + " misses"));
      table(s, [{key: "name", title: "function", type: "text"}, {key: "where", title: "source", type: "text"},
                {key: mk, title: level + " misses", bar: true}, {key: "executed", title: "executed"},
                {key: "loads", title: "loads"}, {key: "stores", title: "stores"}], c.functions[level], mk);
      s.append(el("h3", {}, "Source lines with the most " + level + " misses"));
      table(s, [{key: "name", title: "source line", type: "text"}, {key: "where", title: "function", type: "text"},
                {key: mk, title: level + " misses", bar: true}, {key: "executed", title: "executed"}],
            c.source_lines[level], mk);
    } else {
      s.append(el("h3", {}, "PCs with the most " + level + " misses (give --elf for functions and source lines)"));
      table(s, [{key: "pc", title: "pc", type: "hex"}, {key: "misses", title: "misses", bar: true},
                ...KINDS.map(k => ({key: k, title: k}))], c.pcs[level], "misses");
    }
  }
}

function sharingSection() {
  const s = section("sharing", "Sharing between vCPUs");
  if (unavailable(s, "sharing") || !DOC.sharing) return;
  const sh = DOC.sharing;
  s.append(el("p", {class: "how"}, "Line transfers between vCPUs by mtrace's rule, as memtap sharing counts them (64-byte " +
    "lines of virtual addresses; MMIO skipped): a load is a transfer from the line's last writer when the line has been " +
    "written and this vCPU holds no copy; a store is a transfer from the most recent other vCPU to access the line when " +
    "another vCPU holds a copy, and leaves the storing vCPU the only holder. " + num(sh.transfers) + " transfers on " +
    num(sh.shared_lines) + " lines accessed by more than one vCPU."));
  const labels = sh.vcpus.map(v => "vCPU " + v);
  const div = plot(s, "plot-sharing", [{type: "heatmap", x: labels, y: labels, z: sh.matrix, colorscale: [[0, "#f4f7fb"], [1, "#2b5d8f"]],
    text: sh.matrix.map(r => r.map(String)), texttemplate: "%{text}", hovertemplate: "from %{y} to %{x}: %{z}<extra></extra>"}],
    {height: 120 + 40 * labels.length, width: 200 + 60 * labels.length, xaxis: {title: {text: "to"}, side: "bottom"},
     yaxis: {title: {text: "from"}, autorange: "reversed"}});
  div.dataset.kind = "sharing";
  div.style.width = (200 + 60 * labels.length) + "px";
  s.append(el("h3", {}, "Lines accessed by more than one vCPU"));
  table(s, [{key: "address", title: "line", type: "hex"}, {key: "transfers", title: "transfers", bar: true},
            {key: "loads", title: "loads"}, {key: "stores", title: "stores"},
            {key: "readers", title: "readers", type: "text", value: r => r.readers.join(",")},
            {key: "writers", title: "writers", type: "text", value: r => r.writers.join(",")}], sh.lines, "transfers");
}

function coverageSection() {
  const s = section("coverage", "Coverage");
  if (unavailable(s, "coverage") || !DOC.coverage) return;
  const c = DOC.coverage;
  s.append(el("p", {class: "how"}, "Lines with code (by the DWARF line tables) that ran, and functions entered, per " +
    "source file, as memtap coverage counts them: " + c.totals.lines_hit + " of " + c.totals.lines + " lines, " +
    c.totals.functions_hit + " of " + c.totals.functions + " functions."));
  const rows = c.files.map(f => Object.assign({line_pct: f.lines ? 100 * f.lines_hit / f.lines : 0}, f));
  table(s, [{key: "file", title: "file", type: "text"}, {key: "line_pct", title: "lines run", bar: true, barMax: 100,
             type: "text", value: r => pct(r.lines_hit, r.lines)},
            {key: "lines_hit", title: "lines run"}, {key: "lines", title: "lines"},
            {key: "functions_hit", title: "functions entered"}, {key: "functions", title: "functions"},
            {key: "path", title: "path", type: "text"}], rows, "lines");
}

function notesSection() {
  const notes = DOC.notes || [];
  if (!notes.length) return;
  const s = section("notes", "Notes");
  for (const n of notes) s.append(el("p", {class: "note"}, n));
}

function layoutRecord() {
  /* Where each plot is drawn, in page pixels, for tests that look at a screenshot. */
  for (const d of document.querySelectorAll(".plot")) {
    const r = d.getBoundingClientRect();
    d.dataset.rect = [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height].map(Math.round).join(",");
  }
}

function finish() {
  layoutRecord();
  document.getElementById("memtap-errors").textContent = window.memtapErrors.join("\n");
  document.body.dataset.state = window.memtapErrors.length ? "error" : "drawn";
}

try {
  notesSection();
  overview();
  heatmapSection();
  unitSection("pages", "Hottest pages", DOC.pages, "page");
  unitSection("lines", "Hottest lines", DOC.lines, "line");
  profileSection("functions", "Functions", "functions", "function");
  profileSection("source-lines", "Source lines", "source_lines", "source line");
  cacheSection();
  sharingSection();
  coverageSection();
  Promise.all(pending).then(finish, e => { window.memtapErrors.push("plot: " + e); finish(); });
} catch (e) {
  window.memtapErrors.push("report: " + (e && e.stack ? e.stack : e));
  finish();
}
