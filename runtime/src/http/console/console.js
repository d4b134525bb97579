// projector console: one page over the runtime's own JSON API.
//
// - Reads /v1/views every 2 s, and for the view on screen its samples
//   (/v1/views/{view}/samples) and recent failures
//   (/v1/views/{view}/failures); rows on demand; a row's changes from its
//   watch stream (Server-Sent Events, read with fetch so that the token can
//   go in a header).
// - With a token set on the runtime, the first 401 asks for it; it is kept
//   in sessionStorage (this tab only) and sent as a bearer token.
// - Everything from the runtime is put into the page as text, never as
//   markup.
"use strict";

const POLL_MS = 2000;
const TOKEN_KEY = "projector-console-token";
const PAGE_ROWS = 20;

const state = {
  views: [],
  timer: null,
  watch: null,
  rows: { view: null, query: null, after: [], page: null },
};

// ---- small DOM helpers --------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const svgNs = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const node = document.createElementNS(svgNs, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  return node;
}

function number(n) {
  if (n === undefined || n === null) return "–";
  return Number(n).toLocaleString("en");
}

function rate(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return "–";
  return n >= 100 ? Math.round(n).toLocaleString("en") : n.toFixed(1);
}

function figures(pairs) {
  return el("dl", { class: "figures" },
    pairs.map(([label, value, id]) => el("div", {}, el("dt", {}, label), el("dd", { "data-figure": id }, value))));
}

// ---- the API ------------------------------------------------------------

class Unauthorized extends Error {}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(path, options) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const response = await fetch(path, { headers, ...(options || {}) });
  if (response.status === 401) throw new Unauthorized();
  return response;
}

async function json(path) {
  const response = await api(path);
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return body;
}

function viewPath(name, rest) {
  return `/v1/views/${encodeURIComponent(name)}${rest || ""}`;
}

// ---- charts -------------------------------------------------------------

// A sparkline of `values` (numbers) as an SVG with a text description.
function chart(values, label, big) {
  const width = 300;
  const height = 60;
  const node = svg("svg", {
    class: big ? "chart big" : "chart",
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: "none",
    role: "img",
    "aria-label": label,
  });
  const title = svg("title");
  title.textContent = label;
  node.append(title);
  node.append(svg("line", { class: "base", x1: 0, y1: height - 1, x2: width, y2: height - 1 }));
  if (values.length < 2) return node;
  const max = Math.max(...values, 1);
  const step = width / (values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 6)).toFixed(1)}`);
  node.append(svg("polygon", { class: "area", points: `0,${height} ${points.join(" ")} ${width},${height}` }));
  node.append(svg("polyline", { points: points.join(" ") }));
  return node;
}

// Applied events per second between consecutive samples.
function throughput(samples) {
  const rates = [];
  for (let i = 1; i < samples.length; i++) {
    const seconds = (samples[i].unix_ms - samples[i - 1].unix_ms) / 1000;
    rates.push(seconds > 0 ? Math.max(0, samples[i].applied - samples[i - 1].applied) / seconds : 0);
  }
  return rates;
}

// True when the lag grew over the last ten samples and is not zero.
function lagRising(samples) {
  if (samples.length < 2) return false;
  const last = samples[samples.length - 1];
  const before = samples[Math.max(0, samples.length - 11)];
  return last.lag > 0 && last.lag > before.lag;
}

// ---- health at a glance -------------------------------------------------

// How far a restore from the changelog got, in words.
function restoreText(restoring) {
  const share = restoring.total > 0 ? ` ${Math.min(100, Math.floor((100 * restoring.records) / restoring.total))}%` : "";
  const eta = restoring.eta_seconds !== null && restoring.eta_seconds !== undefined ? `, about ${Math.ceil(restoring.eta_seconds)} s left` : "";
  return `restoring from its changelog${share} (${number(restoring.records)} of ${number(restoring.total)} records${eta})`;
}

// A deploy's shadow, in words: its version, how far its replay got, or
// why it failed.
function deployText(deployment) {
  const shadow = deployment.shadow;
  if (shadow.failed) return `deploy of version ${shadow.version} failed: ${shadow.failed}`;
  const share = shadow.total > 0 ? ` ${Math.min(100, Math.floor((100 * shadow.replayed) / shadow.total))}%` : "";
  const lag = shadow.lag !== null && shadow.lag !== undefined ? `, lag ${number(shadow.lag)}` : "";
  const state = shadow.state === "caught-up" ? "caught up" : "building";
  const failures = shadow.failures > 0 ? `, ${number(shadow.failures)} failed` : "";
  return `deploying version ${shadow.version}: ${state}${share} (${number(shadow.replayed)} of ${number(shadow.total)} records replayed${lag}${failures})`;
}

function badges(view, samples) {
  const list = [];
  const stopped = view.partitions.filter((p) => p.state === "stopped");
  // A restore that failed stays marked (its store is never read): the
  // failure is what to show.
  if (view.state !== "running") list.push(["bad", view.state]);
  else if (view.restoring) list.push(["warn", restoreText(view.restoring)]);
  else if (stopped.length) list.push(["bad", `stopped: ${stopped.length} partition${stopped.length > 1 ? "s" : ""}`]);
  else list.push(["ok", "running"]);
  if (samples && lagRising(samples)) list.push(["warn", "lag rising"]);
  if (view.unassigned_ms !== undefined && view.unassigned_ms !== null) list.push(["warn", "owns no partition"]);
  if (view.dead_letters_held > 0) list.push(["warn", `${number(view.dead_letters_held)} dead letters held`]);
  if (view.quarantined_subjects > 0) list.push(["warn", `${number(view.quarantined_subjects)} subject${view.quarantined_subjects > 1 ? "s" : ""} quarantined`]);
  const deployment = view.deployment;
  if (deployment && deployment.shadow) list.push([deployment.shadow.failed ? "bad" : "info", deployText(deployment)]);
  if (deployment && deployment.live.version > 1) list.push(["info", `version ${deployment.live.version}${deployment.previous ? `, rollback to ${deployment.previous.version} possible` : ""}`]);
  return list;
}

function badgeList(list) {
  return el("p", { class: "badges" }, list.map(([kind, text]) => el("span", { class: `badge ${kind}`, "data-badge": kind }, text)));
}

function severity(list) {
  if (list.some(([kind]) => kind === "bad")) return "bad";
  if (list.some(([kind]) => kind === "warn")) return "warn";
  return "ok";
}

function totalLag(view) {
  const known = view.partitions.filter((p) => p.lag !== null && p.lag !== undefined);
  return known.length ? known.reduce((sum, p) => sum + p.lag, 0) : null;
}

// ---- the overview -------------------------------------------------------

async function showOverview() {
  const list = document.getElementById("view-list");
  const samples = await Promise.all(state.views.map((v) => json(viewPath(v.name, "/samples")).catch(() => null)));
  const cards = state.views.map((view, i) => {
    const kept = samples[i] ? samples[i].samples : [];
    const rates = throughput(kept).slice(-60);
    const now = rates.length ? rates[rates.length - 1] : null;
    const marks = badges(view, kept);
    return el("article", { class: `card ${severity(marks)}`, "data-view": view.name },
      el("h3", {}, el("a", { href: `#/view/${encodeURIComponent(view.name)}` }, view.name)),
      badgeList(marks),
      figures([
        ["rows", number(view.rows), "rows"],
        ["events/s", rate(now), "rate"],
        ["lag", number(totalLag(view)), "lag"],
        ["shards", number(view.shards), "shards"],
      ]),
      chart(rates, `${view.name}: applied events per second over the last minute, now ${rate(now)}`),
      el("p", { class: "caption" }, `events/s, last minute; peak ${rate(Math.max(0, ...rates))}`));
  });
  list.replaceChildren(...(cards.length ? cards : [el("p", { class: "empty" }, "This runtime runs no view.")]));
}

// ---- a view -------------------------------------------------------------

function partitionTable(view, samples) {
  if (!view.partitions.length) return el("p", { class: "empty" }, "No partition yet.");
  const history = (p) => samples
    .map((s) => (s.partitions.find((q) => q.topic === p.topic && q.partition === p.partition) || {}).lag)
    .filter((lag) => lag !== null && lag !== undefined);
  return el("div", { class: "table-wrap" }, el("table", { id: "partitions" },
    el("caption", { class: "caption" }, "Partitions: checkpoint (next offset to apply), high watermark and lag"),
    el("thead", {}, el("tr", {}, ["topic", "partition", "state", "assigned", "checkpoint", "high watermark", "lag", "lag, 5 min", "stopped shards", "last error"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, view.partitions.map((p) => el("tr", { class: p.state === "stopped" ? "bad" : "", "data-partition": `${p.topic}/${p.partition}` },
      el("td", {}, p.topic),
      el("td", { class: "num" }, p.partition),
      el("td", {}, p.state),
      el("td", {}, p.assigned ? "yes" : "no"),
      el("td", { class: "num" }, number(p.checkpoint)),
      el("td", { class: "num" }, number(p.high_watermark)),
      el("td", { class: "num" }, number(p.lag)),
      el("td", {}, chart(history(p), `lag of ${p.topic}/${p.partition} over the last five minutes, now ${number(p.lag)}`)),
      el("td", {}, p.stopped_shards && p.stopped_shards.length ? p.stopped_shards.join(", ") : "–"),
      el("td", { class: p.last_error ? "error-text" : "" }, p.last_error ? el("span", { class: "clamp", title: p.last_error }, p.last_error) : "–"))))));
}

function failureTable(report) {
  if (!report || !report.failures.length) return el("p", { class: "empty", id: "failures" }, "No failed record since the runtime started.");
  return el("div", { class: "table-wrap" }, el("table", { id: "failures" },
    el("caption", { class: "caption" }, `The last ${report.failures.length} failed records (of at most ${report.capacity} kept), newest first`),
    el("thead", {}, el("tr", {}, ["when", "outcome", "class", "topic", "partition", "offset", "shard", "message"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, report.failures.map((f) => el("tr", { "data-outcome": f.outcome },
      el("td", {}, new Date(f.unix_ms).toLocaleTimeString("en-GB")),
      el("td", {}, f.outcome),
      el("td", {}, f.class),
      el("td", {}, f.topic),
      el("td", { class: "num" }, f.partition),
      el("td", { class: "num" }, f.offset),
      el("td", { class: "num" }, f.shard),
      el("td", { class: "error-text" }, f.message))))));
}

function counterFigures(counters) {
  const names = ["applied", "duplicates", "duplicates_by_id", "skipped", "dead_lettered", "quarantined", "discarded", "stopped", "retries", "refetches", "gaps", "batches", "offset_commit_failures", "consumer_errors", "guest_logs_dropped", "instances_recycled"];
  return figures(names.filter((n) => n in counters).map((n) => [n.replaceAll("_", " "), number(counters[n]), `counter-${n}`]));
}

async function showView(name) {
  const detail = document.getElementById("detail");
  const view = state.views.find((v) => v.name === name);
  if (!view) {
    detail.replaceChildren(el("p", { class: "error-text" }, `No view named ${name}.`), el("a", { href: "#/" }, "All views"));
    return;
  }
  const [samplesReport, failures] = await Promise.all([
    json(viewPath(name, "/samples")).catch(() => null),
    json(viewPath(name, "/failures")).catch(() => null),
  ]);
  const samples = samplesReport ? samplesReport.samples : [];
  const rates = throughput(samples).slice(-60);
  const lags = samples.map((s) => s.lag);
  const marks = badges(view, samples);
  let live = document.getElementById("live");
  if (!live || live.dataset.view !== name) {
    live = el("div", { id: "live", "data-view": name });
    detail.replaceChildren(
      el("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, el("a", { href: "#/" }, "All views"), " / ", name),
      el("h2", { id: "detail-title" }, name),
      live,
      rowBrowser(view));
  }
  const now = rates.length ? rates[rates.length - 1] : null;
  live.replaceChildren(
    badgeList(marks),
    figures([
      ["module", view.module_hash.slice(0, 8), "module"],
      ["rows", number(view.rows), "rows"],
      ["shards", number(view.shards), "shards"],
      ["indexes", view.indexes.length ? view.indexes.join(", ") : "none", "indexes"],
      ["group", view.group, "group"],
      ["topics", view.topics.join(", "), "topics"],
      ["dead letters held", number(view.dead_letters_held), "held"],
      ["quarantined", `${number(view.quarantined_subjects)} subjects, ${number(view.quarantined_records)} records`, "quarantined"],
      ["events/s", rate(now), "rate"],
    ]),
    el("div", { class: "pair" },
      el("div", {},
        el("h3", {}, "Throughput"),
        chart(rates, `applied events per second over the last minute, now ${rate(now)}`, true),
        el("p", { class: "caption" }, `applied events per second, last minute; peak ${rate(Math.max(0, ...rates))}`)),
      el("div", {},
        el("h3", {}, "Lag"),
        chart(lags, `lag over the last five minutes, now ${number(totalLag(view))}`, true),
        el("p", { class: "caption" }, `records behind the high watermarks, last five minutes; peak ${number(Math.max(0, ...lags))}`))),
    el("h3", {}, "Counters"),
    counterFigures(view.counters),
    el("h3", {}, "Partitions"),
    partitionTable(view, samples),
    el("h3", {}, "Failed records"),
    failureTable(failures));
}

// ---- the row browser ----------------------------------------------------

function rowBrowser(view) {
  const box = el("section", { id: "rows", "aria-labelledby": "rows-title" });
  const prefix = el("input", { id: "row-prefix", name: "prefix", autocomplete: "off", spellcheck: "false" });
  const index = el("select", { id: "row-index", name: "index" },
    el("option", { value: "" }, "(subject prefix)"),
    view.indexes.map((i) => el("option", { value: i }, i)));
  const form = el("form", { class: "inline", id: "row-form", onsubmit: (e) => { e.preventDefault(); state.rows.after = []; loadRows(view.name, index.value, prefix.value, null); } },
    el("label", { for: "row-index" }, "look up by", index),
    el("label", { for: "row-prefix" }, "subject prefix or index value", prefix),
    el("button", { type: "submit", class: "primary" }, "Find rows"));
  box.append(el("h3", { id: "rows-title" }, "Rows"), form,
    el("div", { class: "pair rows" }, el("div", { id: "row-page" }), el("div", { id: "row-detail" })));
  queueMicrotask(() => loadRows(view.name, "", "", null));
  return box;
}

async function loadRows(view, index, value, after) {
  const target = document.getElementById("row-page");
  if (!target) return;
  const query = new URLSearchParams({ limit: String(PAGE_ROWS) });
  if (index) { query.set("index", index); query.set("eq", value); } else if (value) query.set("prefix", value);
  if (after) query.set("after", after);
  try {
    const page = await json(viewPath(view, `/rows?${query}`));
    state.rows = { view, query: { index, value }, after: state.rows.after, page };
    const rows = page.rows.map((r) => el("tr", { "data-subject": r.subject },
      el("td", { class: "subject" }, el("button", { type: "button", class: "link", onclick: () => openRow(view, r.subject) }, r.subject)),
      el("td", { class: "num" }, r.version),
      el("td", { class: "preview" }, el("code", {}, JSON.stringify(r.row)))));
    const back = state.rows.after.length > 0;
    target.replaceChildren(
      rows.length ? el("div", { class: "table-wrap" }, el("table", { id: "row-table" },
        el("thead", {}, el("tr", {}, ["subject", "version", "row"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows))) : el("p", { class: "empty" }, "No row matches."),
      el("div", { class: "pager" },
        el("button", { type: "button", disabled: !back, onclick: () => { state.rows.after.pop(); loadRows(view, index, value, state.rows.after.at(-1) || null); } }, "Previous page"),
        el("button", { type: "button", disabled: !page.next, id: "next-page", onclick: () => { state.rows.after.push(page.next); loadRows(view, index, value, page.next); } }, "Next page")));
  } catch (err) {
    if (err instanceof Unauthorized) return askToken(true);
    target.replaceChildren(el("p", { class: "error-text", role: "alert" }, err.message));
  }
}

async function openRow(view, subject) {
  location.hash = `#/view/${encodeURIComponent(view)}/row/${encodeURIComponent(subject)}`;
}

async function showRow(view, subject) {
  const target = document.getElementById("row-detail");
  if (!target) return;
  if (state.watch && state.watch.subject === subject && state.watch.view === view) return;
  stopWatch();
  const heading = el("h3", { id: "row-title", tabindex: "-1" }, `Row ${subject}`);
  const current = el("div", { id: "row-current" });
  const changes = el("ol", { class: "changes", id: "row-changes", "aria-live": "polite" });
  target.replaceChildren(heading, current,
    el("h3", {}, "Live changes"),
    el("p", { class: "caption", id: "watch-state" }, "following the row's changes…"),
    changes);
  if (!(await readRow(view, subject, current))) return;
  heading.focus();
  watch(view, subject, changes);
}

// Read the row into `target`: its version, ETag and JSON. False when the
// read failed (shown there).
async function readRow(view, subject, target) {
  const response = await api(viewPath(view, `/rows/${encodeURIComponent(subject)}`));
  if (response.status === 404) {
    target.replaceChildren(el("p", { class: "empty" }, "No such row (yet, or any more)."));
    return true;
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    target.replaceChildren(el("p", { class: "error-text", role: "alert" }, body.error || response.statusText));
    return false;
  }
  const text = await response.text();
  target.replaceChildren(
    el("dl", { class: "meta" },
      el("dt", {}, "version"), el("dd", { "data-figure": "row-version" }, response.headers.get("projector-row-version")),
      el("dt", {}, "ETag"), el("dd", { "data-figure": "row-etag" }, el("code", {}, response.headers.get("etag")))),
    el("pre", { class: "json", id: "row-json", tabindex: "0", "aria-label": `the row of ${subject}` }, pretty(text)));
  return true;
}

function pretty(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

// Follow the row's watch stream; each event becomes a list item.
async function watch(view, subject, list) {
  const controller = new AbortController();
  state.watch = { view, subject, controller };
  const status = document.getElementById("watch-state");
  try {
    const response = await api(viewPath(view, `/rows/${encodeURIComponent(subject)}/watch`), {
      headers: { Accept: "text/event-stream", ...(token() ? { Authorization: `Bearer ${token()}` } : {}) },
      signal: controller.signal,
    });
    if (!response.ok || !response.body) throw new Error(`the watch stream answered ${response.status}`);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = { type: "message", data: "" };
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event.type = line.slice(6).trim();
          else if (line.startsWith("data:")) event.data += line.slice(5).trim();
        }
        if (event.type === "current" || event.type === "set" || event.type === "delete" || event.type === "resync") {
          change(list, event);
        }
      }
    }
    if (status) status.textContent = "the stream ended (the runtime stopped?)";
  } catch (err) {
    if (err.name === "AbortError") return;
    if (err instanceof Unauthorized) return askToken(true);
    if (status) { status.textContent = err.message; status.className = "caption error-text"; }
  }
}

function change(list, event) {
  let data = {};
  try { data = JSON.parse(event.data); } catch { data = {}; }
  const when = new Date().toLocaleTimeString("en-GB");
  const what = event.type === "delete" ? "deleted" : `version ${data.version}`;
  list.prepend(el("li", { "data-change": event.type, "data-version": data.version },
    el("strong", {}, event.type), ` ${what} at ${when}: `,
    el("code", {}, data.row === null || data.row === undefined ? "no row" : JSON.stringify(data.row))));
  while (list.children.length > 50) list.lastElementChild.remove();
  const current = document.getElementById("row-current");
  if (event.type !== "current" && current && state.watch) {
    // The row as it is now, with its new ETag.
    readRow(state.watch.view, state.watch.subject, current).catch(() => {});
  }
}

function stopWatch() {
  if (state.watch) state.watch.controller.abort();
  state.watch = null;
}

// ---- sign-in ------------------------------------------------------------

function askToken(refused) {
  stopPolling();
  stopWatch();
  const had = token();
  if (had) sessionStorage.removeItem(TOKEN_KEY);
  document.getElementById("overview").hidden = true;
  document.getElementById("detail").hidden = true;
  const section = document.getElementById("sign-in");
  section.hidden = false;
  document.getElementById("sign-in-reason").textContent = had && refused
    ? "The runtime refused that token. Enter the token again."
    : "This runtime asks for a bearer token.";
  document.getElementById("sign-in-reason").className = had && refused ? "error-text" : "";
  setConnection("sign-in needed", true);
  document.getElementById("token").focus();
}

function signIn(event) {
  event.preventDefault();
  const input = document.getElementById("token");
  sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = "";
  document.getElementById("sign-in").hidden = true;
  refresh();
}

// ---- the loop -----------------------------------------------------------

function setConnection(text, bad) {
  const node = document.getElementById("connection");
  node.textContent = text;
  node.className = bad ? "bad" : "";
}

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "view" && parts[1]) return { view: parts[1], row: parts[2] === "row" ? parts[3] : null };
  return { view: null, row: null };
}

async function refresh() {
  stopPolling();
  try {
    const report = await json("/v1/views");
    state.views = report.views;
    setConnection(`updated ${new Date().toLocaleTimeString("en-GB")}`, false);
    const where = route();
    document.getElementById("overview").hidden = where.view !== null;
    document.getElementById("detail").hidden = where.view === null;
    if (where.view === null) {
      stopWatch();
      await showOverview();
    } else {
      await showView(where.view);
      if (where.row) await showRow(where.view, where.row);
      else { stopWatch(); const d = document.getElementById("row-detail"); if (d) d.replaceChildren(); }
    }
  } catch (err) {
    if (err instanceof Unauthorized) return askToken(true);
    setConnection(`cannot reach the runtime: ${err.message}`, true);
  }
  state.timer = setTimeout(refresh, POLL_MS);
}

function stopPolling() {
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("sign-in-form").addEventListener("submit", signIn);
  window.addEventListener("hashchange", () => {
    if (!route().view) document.getElementById("detail").replaceChildren();
    refresh();
  });
  refresh();
});
