// The responsed inspector: a single page on the public API only. The API key lives in memory
// and in this tab's sessionStorage (gone when the tab closes), and is sent only in the
// Authorization header: never in a URL. Everything from the server is shown as text.
"use strict";

const KEY_SLOT = "responsed.inspector.key";
const LIST_POLL_MS = 2000; // the list is live by polling; a response's log by its SSE stream
const OVERVIEW_POLL_MS = 2000;
// A cancel ends with response.failed: there is no response.cancelled event.
const TERMINAL = new Set(["response.completed", "response.failed", "response.incomplete"]);
const STATUSES = ["queued", "in_progress", "completed", "failed", "cancelled", "incomplete"];

let apiKey = sessionStorage.getItem(KEY_SLOT) || "";
let viewer = null; // {tenant, admin} once the key is known to work
let stopPage = () => {}; // what the current page must stop (timers, streams) when left
let generation = 0; // bumped by each render: a page's late replies for an old one are dropped
// aria-busy on <main> is true from a render until its page has its first data on screen.
function busy(value) { main().setAttribute("aria-busy", value ? "true" : "false"); }

// -- small helpers ----------------------------------------------------------------------------
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const $ = (selector, root = document) => root.querySelector(selector);
const main = () => $("#main");
function toast(message) {
  const box = $("#toast");
  box.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.textContent = ""; }, 4000);
}
function when(seconds) {
  if (seconds === null || seconds === undefined) return "";
  return new Date(seconds * 1000).toLocaleString();
}
function ms(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  return seconds < 1 ? `${Math.round(seconds * 1000)} ms` : `${seconds.toFixed(2)} s`;
}
function badge(status) { return h("span", { class: `badge ${status}` }, status); }
function clip(text, n = 120) { text = String(text ?? ""); return text.length > n ? text.slice(0, n) + "…" : text; }
function outputText(response) {
  const parts = [];
  for (const item of response.output || []) {
    if (item.type === "message") for (const c of item.content || []) if (c.text) parts.push(c.text);
    if (item.type === "function_call") parts.push(`${item.name}(${item.arguments})`);
    if (item.type === "custom_tool_call") parts.push(`${item.name}(${item.input})`);
  }
  return parts.join(" ");
}
function route() {
  const [path, query] = (location.hash.slice(1) || "/responses").split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query || "") };
}
function go(path, params) {
  const query = params ? new URLSearchParams(
    Object.entries(params).filter(([, v]) => v !== "" && v !== null && v !== undefined)).toString() : "";
  location.hash = "#" + path + (query ? "?" + query : "");
}

// -- the API ----------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}
function headers() { return apiKey ? { Authorization: `Bearer ${apiKey}` } : {}; }
async function api(path, params) {
  const query = params ? "?" + new URLSearchParams(
    Object.entries(params).filter(([, v]) => v !== "" && v !== null && v !== undefined)) : "";
  const reply = await fetch(path + query, { headers: headers(), cache: "no-store" });
  const text = await reply.text();
  let body = null;
  try { body = JSON.parse(text); } catch { body = text; }
  if (!reply.ok) throw new ApiError(reply.status, body);
  return body;
}
// Server-sent events over fetch (EventSource cannot send the Authorization header).
async function follow(path, onEvent, signal) {
  const reply = await fetch(path, { headers: { ...headers(), Accept: "text/event-stream" }, signal });
  if (!reply.ok) throw new ApiError(reply.status, await reply.json().catch(() => null));
  const reader = reply.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let id = null; let data = "";
      for (const line of frame.split("\n")) {
        if (line.startsWith("id: ")) id = Number(line.slice(4));
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data && data !== "[DONE]" && id !== null) onEvent(id, JSON.parse(data));
    }
  }
}
function showError(error, where = main()) {
  const box = h("div", { class: "alert", role: "alert" },
    error instanceof ApiError && error.status === 401
      ? "This server needs an API key: enter it above." : `Error: ${error.message}`);
  where.append(box);
  return box;
}

// -- key and viewer ---------------------------------------------------------------------------
let asked = 0; // identify() calls: only the latest one's answer counts
async function identify() {
  const who = $("#who");
  const mine = ++asked;
  try {
    const activity = await api("/v1/inspect/activity", { window_s: 60 });
    if (mine !== asked) return false;
    viewer = activity.viewer;
    who.textContent = `tenant ${viewer.tenant}${viewer.admin ? " · admin (all tenants)" : ""}`;
  } catch (error) {
    if (mine !== asked) return false;
    viewer = null;
    who.textContent = error.status === 401 ? "key needed" : "";
  }
  return true;
}
function setupKey() {
  $("#api-key").value = "";
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy(true);
    apiKey = $("#api-key").value.trim();
    $("#api-key").value = "";
    if (apiKey) sessionStorage.setItem(KEY_SLOT, apiKey); else sessionStorage.removeItem(KEY_SLOT);
    identify().then((current) => current && render());
  });
  $("#forget-key").addEventListener("click", () => {
    busy(true);
    apiKey = "";
    sessionStorage.removeItem(KEY_SLOT);
    identify().then((current) => current && render());
  });
}

// -- filters form -----------------------------------------------------------------------------
function field(label, input) { return h("label", {}, label, input); }
function toUnix(local) { return local ? String(Math.floor(new Date(local).getTime() / 1000)) : ""; }
function toLocal(unix) {
  if (!unix) return "";
  const d = new Date(Number(unix) * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function filterForm(spec, params, onApply) {
  const inputs = {};
  const form = h("form", { class: "filters", role: "search" });
  for (const [name, label, kind, options] of spec) {
    let input;
    if (kind === "select") {
      input = h("select", { name }, options.map(([v, t]) => h("option", { value: v }, t)));
      input.value = params.get(name) || "";
    } else if (kind === "time") {
      input = h("input", { type: "datetime-local", name });
      input.value = toLocal(params.get(name));
    } else {
      input = h("input", { type: kind, name, value: params.get(name) || "" });
    }
    inputs[name] = [input, kind];
    form.append(field(label, input));
  }
  const values = () => Object.fromEntries(Object.entries(inputs).map(([name, [input, kind]]) =>
    [name, kind === "time" ? toUnix(input.value) : input.value.trim()]));
  form.append(h("button", { type: "submit", class: "primary" }, "Apply"),
    h("button", { type: "reset", onclick: () => setTimeout(() => onApply({}), 0) }, "Clear"));
  form.addEventListener("submit", (event) => { event.preventDefault(); onApply(values()); });
  return { form, values };
}

// -- Responses --------------------------------------------------------------------------------
const RESPONSE_FILTERS = () => [
  ["status", "Status", "select", [["", "any"], ...STATUSES.map((s) => [s, s])]],
  ["model", "Model", "text"],
  ["conversation_id", "Conversation", "text"],
  ["previous_response_id", "Continues", "text"],
  ["created_after", "From", "time"],
  ["created_before", "To", "time"],
  ["has_tool_calls", "Tool calls", "select", [["", "any"], ["true", "with"], ["false", "without"]]],
  ["q", "Text", "search"],
  ...(viewer?.admin ? [["tenant", "Tenant", "text"]] : []),
];

function responseRow(response) {
  const link = h("a", { href: `#/response/${response.id}`, class: "mono" }, response.id.slice(0, 18) + "…");
  return h("tr", { "data-id": response.id },
    h("td", {}, when(response.created_at)),
    h("td", {}, link),
    h("td", {}, badge(response.status)),
    h("td", {}, response.model),
    viewer?.admin ? h("td", { class: "tenant" }, response.tenant || "") : null,
    h("td", { class: "clip wide" }, clip(outputText(response))),
    h("td", { class: "wide" }, response.usage ? String(response.usage.total_tokens) : ""));
}

function responsesPage(params) {
  const filters = Object.fromEntries(params);
  const root = main();
  root.replaceChildren(h("h2", {}, "Responses"));
  const { form } = filterForm(RESPONSE_FILTERS(), params, (values) => go("/responses", values));
  const body = h("tbody");
  const table = h("table", { id: "responses" },
    h("thead", {}, h("tr", {}, h("th", {}, "Created"), h("th", {}, "Id"), h("th", {}, "Status"),
      h("th", {}, "Model"), viewer?.admin ? h("th", {}, "Tenant") : null,
      h("th", { class: "wide" }, "Output"), h("th", { class: "wide" }, "Tokens"))),
    body);
  const more = h("button", { type: "button", id: "more", disabled: true }, "Older…");
  const live = h("span", { class: "muted", id: "live" }, "");
  root.append(form, h("div", { class: "bar" }, live, h("span", { class: "grow" }), more),
    h("div", { class: "table-wrap" }, table));
  const rows = new Map();
  let lastId = null;
  let alive = true;

  function place(response, fresh) {
    const row = responseRow(response);
    if (fresh) row.classList.add("fresh");
    const old = rows.get(response.id);
    if (old) old.replaceWith(row); else if (fresh) body.prepend(row); else body.append(row);
    rows.set(response.id, row);
  }
  async function loadOlder() {
    more.disabled = true;
    try {
      const page = await api("/v1/responses", { ...filters, limit: 25, after: lastId });
      if (!alive) return;
      for (const response of page.data) place(response, false);
      if (page.data.length) lastId = page.last_id;
      more.disabled = !page.has_more;
      if (!rows.size) body.append(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No responses match.")));
    } catch (error) { if (alive) { showError(error); busy(false); } alive = false; }
    if (alive) busy(false);
  }
  async function poll() {
    if (!alive) return;
    try {
      // The newest 50 are refreshed: new ones appear, running ones change status.
      const page = await api("/v1/responses", { ...filters, limit: 50 });
      if (!alive) return;
      let added = 0;
      for (const response of page.data.slice().reverse()) {
        const known = rows.get(response.id);
        if (!known) { $(".empty", body)?.parentElement.remove(); place(response, true); added++; }
        else if (known.querySelector(".badge").textContent !== response.status) place(response, false);
      }
      live.textContent = `live · updated ${new Date().toLocaleTimeString()}${added ? ` · ${added} new` : ""}`;
    } catch (error) { live.textContent = `not updating: ${error.message}`; }
  }
  more.addEventListener("click", loadOlder);
  loadOlder();
  const timer = setInterval(poll, LIST_POLL_MS);
  stopPage = () => { alive = false; clearInterval(timer); };
}

// -- One response -----------------------------------------------------------------------------
// What a log says at each step: the Response, the text as it built up, the tool calls.
function emptyState() { return { response: null, items: new Map(), upto: -1 }; }
function applyEvent(state, e) {
  const items = state.items; // output_index -> {type, text, name, arguments, ...}
  if (e.response) state.response = e.response;
  if (e.type === "response.output_item.added" || e.type === "response.output_item.done") {
    const previous = items.get(e.output_index) || {};
    items.set(e.output_index, { ...e.item, text: previous.text || "", arguments: e.item.arguments ?? previous.arguments ?? "" });
  } else if (e.type === "response.output_text.delta" || e.type === "response.refusal.delta") {
    const item = items.get(e.output_index) || { type: "message", text: "" };
    item.text = (item.text || "") + e.delta;
    items.set(e.output_index, item);
  } else if (e.type === "response.function_call_arguments.delta" || e.type === "response.custom_tool_call_input.delta") {
    const item = items.get(e.output_index) || { type: "function_call", arguments: "" };
    item.arguments = (item.arguments || "") + e.delta;
    items.set(e.output_index, item);
  } else if (e.type === "response.reasoning_summary_text.delta" || e.type === "response.reasoning_text.delta") {
    const item = items.get(e.output_index) || { type: "reasoning", text: "" };
    item.text = (item.text || "") + e.delta;
    items.set(e.output_index, item);
  }
}
// What a log says at a step: the Response, the text as it built up, the tool calls. Going
// forward continues from the last state (a live log costs one step per event); going back
// starts over.
function replayState(events, upto, memo) {
  let state = memo && memo.upto <= upto ? memo : emptyState();
  if (state !== memo) state.upto = -1;
  for (let i = state.upto + 1; i <= upto && i < events.length; i++) applyEvent(state, events[i].event);
  state.upto = Math.min(upto, events.length - 1);
  return state;
}
function builtItems(state) { return [...state.items.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v); }

function timings(events) {
  const at = (test) => events.find((e) => test(e.type))?.created_at;
  const created = events[0]?.created_at;
  const started = at((t) => t === "response.in_progress");
  const first = at((t) => t.endsWith(".delta"));
  const end = at((t) => TERMINAL.has(t));
  return {
    queued: started !== undefined ? started - created : undefined,
    ttft: first !== undefined ? first - created : undefined,
    duration: end !== undefined ? end - created : undefined,
  };
}

function renderBuilt(target, state, live) {
  const blocks = [];
  for (const item of builtItems(state)) {
    if (item.type === "message") blocks.push(h("div", { class: "text-build", "data-role": "text" }, item.text || ""));
    else if (item.type === "function_call" || item.type === "custom_tool_call") {
      blocks.push(h("div", { class: "tool-call" }, h("strong", {}, `${item.name || "tool"}`),
        h("span", { class: "muted" }, ` call_id ${item.call_id || ""}`),
        h("pre", { class: "mono" }, item.arguments ?? item.input ?? "")));
    } else if (item.type === "reasoning") {
      blocks.push(h("div", { class: "text-build muted" }, "reasoning: ", item.text || ""));
    } else blocks.push(h("pre", { class: "json" }, JSON.stringify(item, null, 2)));
  }
  if (!blocks.length) blocks.push(h("div", { class: "text-build", "data-role": "text" }, ""));
  if (live) blocks[blocks.length - 1].append(h("span", { class: "caret", "aria-hidden": "true" }));
  target.replaceChildren(...blocks);
  if (live) { const last = blocks[blocks.length - 1]; last.scrollTop = last.scrollHeight; }
}

function itemView(item) {
  if (item.type === "message") {
    const text = (item.content || []).map((c) => c.text ?? c.refusal ?? (c.type === "input_image" ? "[image]" : "")).join("");
    return h("div", { class: "panel" }, h("strong", {}, item.role || "message"), h("pre", {}, typeof item.content === "string" ? item.content : text));
  }
  if (item.type === "function_call_output" || item.type === "custom_tool_call_output") {
    return h("div", { class: "tool-call" }, h("strong", {}, "tool output"), h("span", { class: "muted" }, ` call_id ${item.call_id}`),
      h("pre", { class: "mono" }, typeof item.output === "string" ? item.output : JSON.stringify(item.output)));
  }
  if (item.type === "function_call" || item.type === "custom_tool_call") {
    return h("div", { class: "tool-call" }, h("strong", {}, item.name), h("span", { class: "muted" }, ` call_id ${item.call_id}`),
      h("pre", { class: "mono" }, item.arguments ?? item.input ?? ""));
  }
  return h("pre", { class: "json" }, JSON.stringify(item, null, 2));
}

async function responsePage(id, params) {
  const mine = generation;
  const root = main();
  root.replaceChildren(h("h2", {}, "Response ", h("span", { class: "mono" }, id)));
  const events = [];
  let tenant = null;
  try {
    let after = -1;
    for (;;) {
      const page = await api(`/v1/responses/${id}/events`, { after, limit: 1000 });
      tenant = page.tenant;
      events.push(...page.data);
      if (!page.has_more) break;
      after = page.last_sequence_number;
    }
  } catch (error) {
    if (mine === generation) { showError(error); busy(false); }
    return;
  }
  if (mine !== generation) return;

  const controller = new AbortController();
  let playing = null;
  stopPage = () => { controller.abort(); clearInterval(playing); };

  const why = h("div", { id: "why" });
  const metaPanel = h("div", { class: "panel", id: "meta" });
  const chainPanel = h("div", { class: "panel", id: "chain" }, h("h3", {}, "Chain"));
  const inputPanel = h("div", { class: "panel", id: "input" }, h("h3", {}, "Input items"));
  const outputPanel = h("div", { class: "panel", id: "output" }, h("h3", {}, "Output items"));
  const built = h("div", { id: "built", "aria-live": "off" });
  const slider = h("input", { type: "range", min: 0, max: 0, value: 0, id: "replay-position", "aria-label": "Replay position" });
  const position = h("span", { class: "mono", id: "replay-label" });
  const speed = h("select", { id: "replay-speed", "aria-label": "Replay speed" },
    [["1", "1×"], ["4", "4×"], ["16", "16×"], ["0", "one step / 50 ms"]].map(([v, t]) => h("option", { value: v }, t)));
  const button = (label, title, onclick, attrs = {}) => h("button", { type: "button", title, "aria-label": title, onclick, ...attrs }, label);
  const playButton = button("▶ Play", "Play", () => (playing ? pause() : play()), { id: "replay-play" });
  const eventBody = h("tbody");
  const eventDetail = h("pre", { class: "json", id: "event-detail" }, "Select an event to see it whole.");
  const liveNote = h("span", { class: "muted", id: "follow-state" });
  const verifyOut = h("span", { id: "verify-result", "aria-live": "polite" });

  const timeline = h("div", { class: "panel", id: "timeline" }, h("h3", {}, "Event timeline ", liveNote),
    h("div", { class: "replay", role: "group", "aria-label": "Replay" },
      button("|◀ First", "First event", () => show(0), { id: "replay-first" }),
      button("◀ Back", "Step back", () => show(Number(slider.value) - 1), { id: "replay-back" }),
      playButton,
      button("Step ▶", "Step forward", () => show(Number(slider.value) + 1), { id: "replay-step" }),
      button("Last ▶|", "Last event", () => show(events.length - 1), { id: "replay-last" }),
      speed, slider, position),
    h("h3", {}, "Text and tool calls as they built up"), built,
    h("div", { class: "grid" },
      h("div", { class: "events table-wrap" }, h("table", { id: "events" },
        h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "Type"), h("th", {}, "At"))), eventBody)),
      eventDetail));

  root.append(why, h("div", { class: "grid" }, metaPanel, chainPanel), timeline,
    h("div", { class: "grid" }, inputPanel, outputPanel));

  let cursor = events.length - 1;
  let memo = null; // the replay state at `cursor`
  let currentRow = null;
  const rowsBySeq = new Map();
  const ended = () => events.length && TERMINAL.has(events[events.length - 1].type);
  const t0 = () => events[0]?.created_at || 0;

  function eventRow(e, index) {
    const row = h("tr", { tabindex: 0, "data-seq": e.sequence_number, onclick: () => show(index),
      onkeydown: (k) => { if (k.key === "Enter") show(index); } },
    h("td", { class: "mono" }, String(e.sequence_number)), h("td", { class: "mono" }, e.type),
    h("td", { class: "mono" }, `+${ms(e.created_at - t0())}`));
    rowsBySeq.set(e.sequence_number, row);
    return row;
  }
  function show(index) {
    if (!events.length) return;
    cursor = Math.max(0, Math.min(events.length - 1, index));
    slider.max = String(events.length - 1);
    slider.value = String(cursor);
    position.textContent = `${cursor + 1} / ${events.length} · seq ${events[cursor].sequence_number}`;
    memo = replayState(events, cursor, memo);
    renderBuilt(built, memo, !ended() && cursor === events.length - 1);
    currentRow?.classList.remove("current");
    currentRow = rowsBySeq.get(events[cursor].sequence_number);
    currentRow?.classList.add("current");
    eventDetail.textContent = JSON.stringify(events[cursor].event, null, 2);
    if (cursor === events.length - 1 && playing) pause();
  }
  function play() {
    if (cursor >= events.length - 1) show(0);
    playButton.textContent = "❚❚ Pause"; playButton.title = "Pause"; playButton.setAttribute("aria-label", "Pause");
    const step = () => {
      const factor = Number(speed.value);
      show(cursor + 1);
      if (!playing) return;
      const next = events[cursor + 1];
      const wait = factor && next ? Math.min(1000, ((next.created_at - events[cursor].created_at) * 1000) / factor) : 50;
      playing = setTimeout(step, Math.max(16, wait));
    };
    playing = setTimeout(step, 50);
  }
  function pause() {
    clearTimeout(playing); playing = null;
    playButton.textContent = "▶ Play"; playButton.title = "Play"; playButton.setAttribute("aria-label", "Play");
  }
  slider.addEventListener("input", () => show(Number(slider.value)));
  timeline.addEventListener("keydown", (k) => {
    if (k.target.tagName === "SELECT") return;
    if (k.key === "ArrowRight") { show(cursor + 1); k.preventDefault(); }
    if (k.key === "ArrowLeft") { show(cursor - 1); k.preventDefault(); }
    if (k.key === " " && k.target.tagName !== "BUTTON") { playing ? pause() : play(); k.preventDefault(); }
  });

  function renderSummary() {
    const state = replayState(events, events.length - 1);
    const r = state.response || {};
    state.items = builtItems(state);
    const t = timings(events);
    const usage = r.usage ? `${r.usage.input_tokens} in · ${r.usage.output_tokens} out · ${r.usage.total_tokens} total` : "–";
    metaPanel.replaceChildren(h("h3", {}, "Metadata"), h("dl", { class: "meta" },
      h("dt", {}, "Status"), h("dd", { id: "status" }, badge(ended() ? r.status : (r.status || "queued"))),
      h("dt", {}, "Model"), h("dd", {}, r.model || ""),
      tenant ? [h("dt", {}, "Tenant"), h("dd", {}, tenant)] : null,
      h("dt", {}, "Created"), h("dd", {}, when(r.created_at)),
      h("dt", {}, "Background"), h("dd", {}, String(!!r.background)),
      h("dt", {}, "Usage"), h("dd", { id: "usage" }, usage),
      h("dt", {}, "Queued"), h("dd", {}, ms(t.queued)),
      h("dt", {}, "TTFT"), h("dd", { id: "ttft" }, ms(t.ttft)),
      h("dt", {}, "Duration"), h("dd", { id: "duration" }, ms(t.duration)),
      h("dt", {}, "Events"), h("dd", {}, String(events.length)),
      h("dt", {}, "Hash chain"), h("dd", {}, h("button", { type: "button", id: "verify", onclick: verify }, "Verify"), " ", verifyOut),
      r.metadata && Object.keys(r.metadata).length ? [h("dt", {}, "Metadata"), h("dd", { class: "mono" }, JSON.stringify(r.metadata))] : null));
    why.replaceChildren();
    if (r.status === "failed") {
      why.append(h("div", { class: "alert", role: "alert" }, h("strong", {}, "Failed: "),
        r.error ? `${r.error.code || ""} ${r.error.message || ""}` : "no error was recorded"));
    } else if (r.status === "cancelled") {
      why.append(h("div", { class: "alert warn", role: "alert" }, h("strong", {}, "Cancelled"), " at the client's request (POST …/cancel)."));
    } else if (r.status === "incomplete") {
      why.append(h("div", { class: "alert warn", role: "alert" }, h("strong", {}, "Incomplete: "), r.incomplete_details?.reason || "unknown reason"));
    }
    outputPanel.replaceChildren(h("h3", {}, "Output items"), ...(ended() ? r.output || [] : state.items).map(itemView));
    return r;
  }
  async function verify() {
    verifyOut.textContent = "checking…";
    try {
      const result = await api("/v1/audit/verify", { response_id: id });
      verifyOut.textContent = result.ok ? "✔ intact: every event matches its hash chain" :
        `✘ broken: ${result.broken.map((b) => b.reason).join("; ")}`;
      verifyOut.className = result.ok ? "ok" : "bad";
    } catch (error) { verifyOut.textContent = error.message; }
  }
  async function renderChain(r) {
    const parts = [h("h3", {}, "Chain")];
    parts.push(h("p", {}, "Continues: ", r.previous_response_id
      ? h("a", { href: `#/response/${r.previous_response_id}`, class: "mono", id: "previous" }, r.previous_response_id) : h("span", { class: "muted" }, "nothing (first of its chain)")));
    const conversation = r.conversation?.id || r.conversation;
    if (conversation) parts.push(h("p", {}, "Conversation: ", h("a", { href: `#/responses?conversation_id=${conversation}`, class: "mono" }, conversation)));
    const nextList = h("ul", { id: "continued-by" });
    parts.push(h("p", {}, "Continued by:"), nextList);
    chainPanel.replaceChildren(...parts);
    try {
      const page = await api("/v1/responses", { previous_response_id: id, order: "asc", limit: 20, tenant: tenant && viewer?.admin ? tenant : "" });
      for (const child of page.data) nextList.append(h("li", {}, h("a", { href: `#/response/${child.id}`, class: "mono" }, child.id), " ", badge(child.status)));
      if (!page.data.length) nextList.append(h("li", { class: "muted" }, "no later response"));
    } catch (error) { nextList.append(h("li", { class: "muted" }, error.message)); }
  }
  async function renderInput() {
    try {
      const page = await api(`/v1/responses/${id}/input_items`, { order: "asc", limit: 100 });
      inputPanel.replaceChildren(h("h3", {}, "Input items"), ...page.data.map(itemView),
        page.has_more ? h("p", { class: "muted" }, "first 100 shown") : null);
    } catch (error) {
      inputPanel.replaceChildren(h("h3", {}, "Input items"), h("p", { class: "muted" },
        error.status === 404 ? "Readable with the owning tenant's key only." : error.message));
    }
  }

  events.forEach((e, i) => eventBody.append(eventRow(e, i)));
  const r = renderSummary();
  renderChain(r);
  renderInput();
  let start = events.length - 1;
  const at = params.get("seq") ? events.findIndex((e) => e.sequence_number === Number(params.get("seq"))) : -1;
  const call = params.get("call_id");
  if (call) start = events.findIndex((e) => e.event.item?.call_id === call);
  show(at >= 0 ? at : start >= 0 ? start : events.length - 1);
  busy(false);

  if (!ended()) {
    liveNote.textContent = "· following live";
    const after = events.length ? events[events.length - 1].sequence_number : -1;
    let pending = [];
    let scheduled = false;
    // Events arrive in bursts: the page redraws at most once per animation frame.
    const flush = () => {
      scheduled = false;
      const atEnd = cursor === events.length - 1;
      const rows = document.createDocumentFragment();
      let summary = false;
      for (const [seq, event] of pending) {
        if (events.length && seq <= events[events.length - 1].sequence_number) continue;
        const entry = { sequence_number: seq, type: event.type, created_at: Date.now() / 1000, event };
        events.push(entry);
        rows.append(eventRow(entry, events.length - 1));
        summary ||= TERMINAL.has(event.type) || event.type === "response.in_progress";
      }
      pending = [];
      eventBody.append(rows);
      if (ended()) liveNote.textContent = "· ended";
      if (summary) renderSummary();
      if ((atEnd && !playing) || ended()) show(events.length - 1); else slider.max = String(events.length - 1);
    };
    follow(`/v1/responses/${id}/events?stream=true&after=${after}`, (seq, event) => {
      pending.push([seq, event]);
      if (!scheduled) { scheduled = true; requestAnimationFrame(flush); }
    }, controller.signal).catch((error) => {
      if (error.name !== "AbortError") liveNote.textContent = `· not following: ${error.message}`;
    });
  }
}

// -- Tool calls -------------------------------------------------------------------------------
const TOOL_FILTERS = () => [
  ["name", "Tool name", "text"],
  ["status", "Status", "select", [["", "any"], ["completed", "completed"], ["incomplete", "incomplete"]]],
  ["has_output", "Output", "select", [["", "any"], ["true", "has output"], ["false", "no output yet"]]],
  ["response_id", "Response", "text"],
  ["conversation_id", "Conversation", "text"],
  ["created_after", "From", "time"],
  ["created_before", "To", "time"],
];
const TOOL_COLUMNS = ["created_at", "name", "call_id", "arguments", "status", "output", "response_id",
  "conversation_id", "model", "owner", "type", "id"];

function csv(rows) {
  const cell = (v) => { const s = v === null || v === undefined ? "" : String(v); return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s; };
  return [TOOL_COLUMNS.join(","), ...rows.map((r) => TOOL_COLUMNS.map((c) => cell(r[c])).join(","))].join("\r\n") + "\r\n";
}
function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(url); a.remove(); }, 1000);
}

function toolsPage(params) {
  const mine = generation;
  const filters = Object.fromEntries(params);
  const root = main();
  root.replaceChildren(h("h2", {}, "Tool calls"));
  const { form } = filterForm(TOOL_FILTERS(), params, (values) => go("/tools", values));
  const body = h("tbody");
  const count = h("span", { class: "muted", id: "tool-count" });
  const more = h("button", { type: "button", id: "tools-more", disabled: true }, "More…");
  const verifyOut = h("span", { id: "range-verify", "aria-live": "polite" });
  const rows = [];
  let after = null;

  async function everyRow() {
    const all = [];
    let cursor = null;
    for (;;) {
      const page = await api("/v1/audit/tool_calls", { ...filters, limit: 100, after: cursor });
      all.push(...page.data);
      if (!page.has_more) return all;
      cursor = page.last_id;
    }
  }
  async function exportAs(kind) {
    try {
      const all = await everyRow();
      if (kind === "jsonl") download("tool_calls.jsonl", "application/x-ndjson", all.map((r) => JSON.stringify(r)).join("\n") + (all.length ? "\n" : ""));
      else download("tool_calls.csv", "text/csv", csv(all));
      toast(`exported ${all.length} tool calls`);
    } catch (error) { toast(error.message); }
  }
  async function verifyRange() {
    verifyOut.textContent = "checking…";
    try {
      const result = await api("/v1/audit/verify", { created_after: filters.created_after, created_before: filters.created_before, conversation_id: filters.conversation_id, response_id: filters.response_id, limit: 1000 });
      verifyOut.textContent = result.ok
        ? `✔ ${result.checked} response${result.checked === 1 ? "" : "s"} checked: every chain intact${result.has_more ? " (first 1000)" : ""}`
        : `✘ ${result.broken.length} of ${result.checked} broken: ${result.broken.map((b) => `${b.response_id}: ${b.reason}`).join("; ")}`;
      verifyOut.className = result.ok ? "ok" : "bad";
    } catch (error) { verifyOut.textContent = error.message; }
  }
  async function load() {
    more.disabled = true;
    try {
      const page = await api("/v1/audit/tool_calls", { ...filters, limit: 50, after });
      if (mine !== generation) return;
      for (const r of page.data) {
        rows.push(r);
        body.append(h("tr", {},
          h("td", {}, when(r.created_at)),
          h("td", {}, h("strong", {}, r.name)),
          h("td", { class: "mono clip" }, clip(r.arguments, 80)),
          h("td", {}, badge(r.status)),
          h("td", { class: "mono clip" }, r.has_output ? clip(r.output, 60) : h("span", { class: "muted" }, "–")),
          h("td", {}, r.stored ? h("a", { href: `#/response/${r.response_id}?call_id=${encodeURIComponent(r.call_id)}`, class: "mono", title: "the response at the moment of the call" }, r.response_id.slice(0, 18) + "…") : h("span", { class: "muted mono" }, `${r.response_id.slice(0, 18)}… (not stored)`)),
          viewer?.admin ? h("td", { class: "wide" }, r.owner) : null,
          h("td", { class: "mono wide" }, r.call_id)));
      }
      after = page.last_id || after;
      more.disabled = !page.has_more;
      count.textContent = `${rows.length} shown${page.has_more ? ", more match" : ""}`;
      if (!rows.length) body.append(h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No tool calls match.")));
    } catch (error) { if (mine === generation) showError(error); }
    if (mine === generation) busy(false);
  }
  more.addEventListener("click", load);
  root.append(form,
    h("div", { class: "bar" }, count, h("span", { class: "grow" }),
      h("button", { type: "button", id: "export-jsonl", onclick: () => exportAs("jsonl") }, "Export JSON lines"),
      h("button", { type: "button", id: "export-csv", onclick: () => exportAs("csv") }, "Export CSV"), more),
    h("div", { class: "table-wrap" }, h("table", { id: "tool-calls" },
      h("thead", {}, h("tr", {}, ["Time", "Tool", "Arguments", "Status", "Output", "Response"].map((t) => h("th", {}, t)),
        viewer?.admin ? h("th", { class: "wide" }, "Tenant") : null, h("th", { class: "wide" }, "Call id"))), body)),
    h("div", { class: "bar" }, h("button", { type: "button", id: "verify-range", onclick: verifyRange }, "Verify hash chains of the responses in this range"), verifyOut));
  load();
  stopPage = () => {};
}

// -- Overview ---------------------------------------------------------------------------------
function parseMetrics(text) {
  const values = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const [name, value] = line.split(" ");
    values[name] = Number(value);
  }
  return values;
}
function sparkline(points, label, unit) {
  const w = 300; const hgt = 100;
  const max = Math.max(1e-9, ...points.map((p) => p[1]));
  const t0 = points.length ? points[0][0] : 0;
  const span = Math.max(1, (points.length ? points[points.length - 1][0] : 1) - t0);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${label} over time`);
  svg.setAttribute("preserveAspectRatio", "none");
  const path = document.createElementNS(svg.namespaceURI, "polyline");
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "#1f5fbf");
  path.setAttribute("stroke-width", "2");
  path.setAttribute("vector-effect", "non-scaling-stroke");
  path.setAttribute("points", points.map(([t, v]) => `${((t - t0) / span) * w},${hgt - 4 - (v / max) * (hgt - 8)}`).join(" "));
  const base = document.createElementNS(svg.namespaceURI, "line");
  for (const [k, v] of [["x1", 0], ["x2", w], ["y1", hgt - 1], ["y2", hgt - 1], ["stroke", "#dde2e8"]]) base.setAttribute(k, v);
  svg.append(base, path);
  const last = points.length ? points[points.length - 1][1] : 0;
  return h("div", { class: "panel chart", "data-chart": label },
    h("h3", {}, label), h("div", { class: "value" }, `${unit === "ms" ? Math.round(last) : last.toFixed(unit === "/s" ? 1 : 0)} ${unit}`),
    svg, h("div", { class: "legend" }, `peak ${max.toFixed(1)} ${unit} · since this page opened`));
}
function barChart(activity) {
  const byStart = new Map();
  for (const b of activity.buckets) byStart.set(b.start, (byStart.get(b.start) || 0) + b.count);
  const now = activity.now;
  const n = Math.round(activity.window_s / activity.bucket_s);
  const first = now - (now % activity.bucket_s) - (n - 1) * activity.bucket_s;
  const counts = Array.from({ length: n }, (_, i) => byStart.get(first + i * activity.bucket_s) || 0);
  const max = Math.max(1, ...counts);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${n} 100`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "responses created per minute, last hour");
  counts.forEach((count, i) => {
    const bar = document.createElementNS(svg.namespaceURI, "rect");
    const height = (count / max) * 96;
    for (const [k, v] of [["x", i + 0.1], ["width", 0.8], ["y", 100 - height], ["height", height], ["fill", "#6b3fb5"]]) bar.setAttribute(k, v);
    svg.append(bar);
  });
  const statuses = {};
  for (const b of activity.buckets) statuses[b.status] = (statuses[b.status] || 0) + b.count;
  return h("div", { class: "panel chart", "data-chart": "created" }, h("h3", {}, "Responses created, last hour (per minute)"),
    h("div", { class: "value" }, String(counts.reduce((a, b) => a + b, 0))), svg,
    h("div", { class: "legend" }, Object.entries(statuses).map(([s, c]) => `${s} ${c}`).join(" · ") || "none"));
}

function overviewPage() {
  const root = main();
  root.replaceChildren(h("h2", {}, "Overview"));
  const charts = h("div", { class: "grid", id: "charts" });
  const health = h("div", { class: "grid", id: "health" });
  root.append(charts, h("h3", {}, "Health"), health);
  const series = { requests: [], running: [], ttft: [], throughput: [], errors: [] };
  let previous = null;
  let activity = null;
  let healthz = null;

  async function sample() {
    try {
      const reply = await fetch("/metrics", { cache: "no-store" });
      const m = parseMetrics(await reply.text());
      const now = Date.now() / 1000;
      if (previous) {
        const dt = Math.max(0.001, now - previous.at);
        const d = (name) => (m[name] || 0) - (previous.m[name] || 0);
        series.requests.push([now, d("responsed_responses_total") / dt]);
        series.throughput.push([now, d("responsed_events_appended_total") / dt]);
        const count = d("responsed_ttft_seconds_count");
        series.ttft.push([now, count > 0 ? (d("responsed_ttft_seconds_sum") / count) * 1000 : (series.ttft.at(-1)?.[1] || 0)]);
      }
      series.running.push([now, m.responsed_responses_running || 0]);
      series.errors.push([now, m.responsed_engine_errors_total || 0]);
      for (const s of Object.values(series)) if (s.length > 300) s.shift();
      previous = { at: now, m };
      if (!activity || series.running.length % 5 === 1) activity = await api("/v1/inspect/activity").catch(() => activity);
      if (series.running.length % 5 === 1) healthz = await api("/healthz").catch(() => healthz);
      draw();
    } catch (error) { toast(error.message); }
  }
  function draw() {
    charts.replaceChildren(
      sparkline(series.requests, "Finished responses", "/s"),
      sparkline(series.running, "Running responses", ""),
      sparkline(series.ttft, "Mean TTFT", "ms"),
      sparkline(series.throughput, "Events stored", "/s"),
      sparkline(series.errors, "Engine errors (total)", ""),
      activity ? barChart(activity) : null);
    const parts = [];
    if (healthz) {
      parts.push(h("div", { class: "panel", id: "server-health" }, h("h3", {}, "This server"), h("dl", { class: "meta" },
        h("dt", {}, "Role"), h("dd", {}, healthz.role), h("dt", {}, "Engine"), h("dd", {}, healthz.engine),
        h("dt", {}, "Running here"), h("dd", {}, String(healthz.running)),
        ...Object.entries(healthz.dependencies).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, badge(v ? "up" : "down"))]))));
    }
    if (activity) {
      const rows = activity.running.map((w) => h("tr", {},
        h("td", { class: "mono" }, w.worker || "(waiting for a worker)"), h("td", {}, String(w.responses)),
        h("td", {}, w.lease_until === null ? "–" : w.lease_until > activity.now ? h("span", { class: "badge up" }, "lease alive") : h("span", { class: "badge down" }, "lease expired"))));
      parts.push(h("div", { class: "panel", id: "workers" }, h("h3", {}, "Workers with running responses"),
        rows.length ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Worker"), h("th", {}, "Running"), h("th", {}, "Lease"))), h("tbody", {}, rows))
          : h("p", { class: "muted" }, "No response is running.")));
    }
    health.replaceChildren(...parts);
    busy(false);
  }
  const mine = generation;
  const tick = () => { if (mine === generation) sample(); };
  tick();
  const timer = setInterval(tick, OVERVIEW_POLL_MS);
  stopPage = () => clearInterval(timer);
}

// -- routing ----------------------------------------------------------------------------------
function render() {
  stopPage();
  stopPage = () => {};
  generation++;
  busy(true);
  const { parts, params } = route();
  const page = parts[0] || "responses";
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.page === (page === "response" ? "responses" : page)) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (page === "response" && parts[1]) responsePage(parts[1], params);
  else if (page === "tools") toolsPage(params);
  else if (page === "overview") overviewPage();
  else responsesPage(params);
}
window.addEventListener("hashchange", render);
window.addEventListener("DOMContentLoaded", () => { setupKey(); identify().then((current) => current && render()); });
