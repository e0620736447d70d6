// DOM helpers. Every piece of text goes in through textContent or a text node: nothing in
// this UI ever assigns innerHTML, so agent outputs, errors, comments, names and descriptions
// (all untrusted) are always shown as text, never parsed as markup.
import { VOCABULARY } from "./vocabulary.js";

/** Create an element. attrs: class, text, on<Event> handlers, dataset, other attributes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "value") el.value = value;
    else if (key === "checked" || key === "disabled" || key === "open" || key === "selected") el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

const LABELS = {
  running: "Running", waiting: "Waiting", completed: "Completed", failed: "Failed", cancelled: "Cancelled",
  pending: "Pending", waiting_for_approval: "Waiting for approval", skipped: "Skipped",
};

/** A status or step-state badge. */
export function badge(state) {
  const known = Object.prototype.hasOwnProperty.call(LABELS, state);
  return h("span", { class: `badge badge-${known ? state : "unknown"}`, dataset: { state: String(state) } },
    known ? LABELS[state] : String(state));
}

/** Statuses in which an execution may still change by itself (the server's list). */
export const ACTIVE = new Set(VOCABULARY.active_statuses);

function pad(n) { return String(n).padStart(2, "0"); }

/** The browser's zone as a short name for date `d`: "UTC", "GMT+1", "CET"... */
export function zoneName(d = new Date()) {
  try {
    const part = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(d)
      .find((p) => p.type === "timeZoneName");
    if (part) return part.value;
  } catch { /* an old engine: fall back to the offset */ }
  const minutes = -d.getTimezoneOffset();
  const sign = minutes < 0 ? "-" : "+";
  return minutes ? `UTC${sign}${pad(Math.floor(Math.abs(minutes) / 60))}:${pad(Math.abs(minutes) % 60)}` : "UTC";
}

/** Local date and time with its zone, e.g. 2026-11-25 14:03:07 CET; the ISO value stays in the title. */
export function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h("span", {}, String(iso));
  const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return h("time", { datetime: iso, title: iso }, text, h("span", { class: "zone" }, ` ${zoneName(d)}`));
}

export function millisBetween(start, end) {
  if (!start) return null;
  const a = new Date(start).getTime();
  const b = end ? new Date(end).getTime() : Date.now();
  return Number.isNaN(a) || Number.isNaN(b) ? null : Math.max(0, b - a);
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

const LARGE_JSON_CHARS = 600;
const LARGE_JSON_LINES = 12;

/**
 * Pretty-printed JSON in a <pre>, as text. Large values are collapsible (<details>);
 * `openKeys` remembers which ones the user opened, so a refresh keeps them open.
 */
export function jsonBlock(value, { label = "Output", key = null, openKeys = null } = {}) {
  const text = value === undefined ? "null" : JSON.stringify(value, null, 2);
  const pre = h("pre", { class: "json" });
  pre.textContent = text;
  const lines = text.split("\n").length;
  if (text.length <= LARGE_JSON_CHARS && lines <= LARGE_JSON_LINES) {
    return h("div", { class: "json-block" }, h("div", { class: "json-label" }, label), pre);
  }
  const details = h("details", { class: "json-block", open: openKeys && key && openKeys.has(key) },
    h("summary", {}, `${label} (${lines} lines, ${text.length} characters)`), pre);
  if (openKeys && key) {
    details.addEventListener("toggle", () => (details.open ? openKeys.add(key) : openKeys.delete(key)));
  }
  return details;
}

/** A hash link inside the app; parts are encoded, so ids can never break out of the URL. */
export function link(text, ...parts) {
  return h("a", { href: "#/" + parts.map(encodeURIComponent).join("/") }, text);
}

/** Who or what started an execution, in words: "by ada", "billing · invoice.created", "for 2026-…". */
export function triggerDetail(trigger) {
  const t = trigger || {};
  if (t.type === "event") return `${t.source || "?"} · ${t.event_type || "?"}${t.replay ? " (replay)" : ""}`;
  if (t.type === "schedule") return t.scheduled_for ? `for ${t.scheduled_for}` : "";
  return t.by ? `by ${t.by}` : "";
}

let noticeTimer = null;

/** A short message in the notice bar (role=status, so screen readers read it). */
export function notify(message, kind = "info") {
  const bar = document.getElementById("notice");
  if (!bar) return;
  replace(bar, h("span", { class: `notice notice-${kind}` }, message));
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => clear(bar), kind === "error" ? 12000 : 5000);
}

/** A secret shown once: read-only text, a Copy button, and the warning that it will not be shown again. */
export function secretOnce(label, value) {
  const field = h("input", { type: "text", readonly: true, value, class: "mono secret-value", "aria-label": label });
  const copy = h("button", { type: "button", class: "primary", onclick: async () => {
    try {
      await navigator.clipboard.writeText(value);
      copy.textContent = "Copied";
    } catch {
      field.select();  // no clipboard permission (plain http): select it for Ctrl+C
      copy.textContent = "Selected: press Ctrl+C";
    }
  } }, "Copy");
  return h("div", { class: "card secret-once", role: "status" },
    h("p", {}, h("strong", {}, label), " — shown once: copy it now, it cannot be shown again."),
    h("div", { class: "secret-row" }, field, copy));
}
