// The account's audit log, newest first, filtered by who, what and when. The filters live in
// the address (#/audit?actor=…), so a filtered view can be bookmarked or shared.

import { get, withQuery } from "../api.js";
import { cell, h, replace, table, when } from "../dom.js";

const PAGE = 50;
const ACTIONS = [
  ["", "any action"],
  ["registry.", "registries: any"], ["registry.create", "registry created"], ["registry.update", "registry changed"],
  ["registry.delete", "registry deleted"],
  ["token.", "tokens: any"], ["token.create", "token created"], ["token.update", "token changed"],
  ["token.delete", "token deleted"], ["token.issue", "bearer token issued to a client"],
  ["repository.delete", "repository deleted"], ["tag.delete", "tag deleted"], ["artifact.delete", "manifest deleted"],
  ["session.", "console sign-ins and sign-outs"],
];

// <input type="datetime-local"> speaks local time without a zone; the API wants a moment
function moment(local) {
  return local ? new Date(local).toISOString() : undefined;
}

function localValue(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

export async function auditPage(main, query, cursors = [null]) {
  const filters = {
    actor: query.get("actor") || undefined,
    action: query.get("action") || undefined,
    since: query.get("since") || undefined,
    until: query.get("until") || undefined,
  };
  const page = await get(withQuery("/api/audit", { limit: PAGE, cursor: cursors[cursors.length - 1], ...filters }));
  const actor = h("input", { id: "audit-actor", value: filters.actor || "", autocomplete: "off", spellcheck: "false" });
  const action = h("select", { id: "audit-action" }, ACTIONS.map(([value, label]) =>
    h("option", { value, selected: value === (filters.action || "") }, label)));
  const since = h("input", { id: "audit-since", type: "datetime-local", value: localValue(filters.since) });
  const until = h("input", { id: "audit-until", type: "datetime-local", value: localValue(filters.until) });
  const form = h("form", { class: "inline", "aria-label": "Filter the audit log" },
    h("div", { class: "field" }, h("label", { for: "audit-actor" }, "Who"), actor),
    h("div", { class: "field" }, h("label", { for: "audit-action" }, "Action"), action),
    h("div", { class: "field" }, h("label", { for: "audit-since" }, "From"), since),
    h("div", { class: "field" }, h("label", { for: "audit-until" }, "Until"), until),
    h("button", { type: "submit" }, "Filter"),
    h("a", { href: "#/audit" }, "Clear filters"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = withQuery("#/audit", {
      actor: actor.value.trim(), action: action.value, since: moment(since.value), until: moment(until.value),
    });
    if (window.location.hash === next) auditPage(main, query);
    else window.location.hash = next;
  });
  const rows = page.items.map((entry) => {
    const p = entry.properties;
    return h("tr", { dataset: { action: p.action } },
      cell("When", when(entry.metadata.createdAt)),
      cell("Who", p.actor),
      cell("Action", h("code", {}, p.action)),
      cell("What", h("span", { class: "mono" }, p.detail && p.detail.name ? `${p.detail.name} (${p.target})` : p.target)),
      cell("From", p.address || h("span", { class: "muted" }, "unknown")));
  });
  replace(main, h("h1", {}, "Audit log"), form,
    rows.length ? table(["When", "Who", "Action", "What", "From"], rows, "Audit log entries")
      : h("p", { class: "muted", id: "audit-empty" }, "No entries match."),
    h("div", { class: "pager" },
      cursors.length > 1 ? h("button", { type: "button", class: "secondary", onclick: () => auditPage(main, query, cursors.slice(0, -1)) }, "Newer") : null,
      page.next ? h("button", {
        type: "button", class: "secondary",
        onclick: () => auditPage(main, query, [...cursors, new URL(page.next, location.href).searchParams.get("cursor")]),
      }, "Older") : null,
      h("span", { class: "muted", id: "audit-total" }, `${page.total} entr${page.total === 1 ? "y" : "ies"}`)));
}
