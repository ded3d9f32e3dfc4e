// A registry's tokens: robot tokens for CI and machines, and one-time tokens that write one
// tag. The password is shown once, right after creation, with the docker login line.

import { get, patch, path, post, remove, withQuery } from "../api.js";
import { badge, cell, command, confirmDialog, errorText, h, onSubmit, replace, table, toast, when } from "../dom.js";
import { registryHost } from "../hosts.js";

const ACTIONS = ["pull", "push", "delete"];
const EXPIRY = [["never", "Never"], ["1", "1 day"], ["7", "7 days"], ["30", "30 days"], ["90", "90 days"], ["365", "1 year"]];
const PAGE = 50;
let rowNumber = 0;

export async function tokensTab(body, registry, shown = null, offset = 0) {
  const page = await get(withQuery(path("registries", registry.id, "tokens"), { limit: PAGE, offset }));
  if (!page.items.length && offset > 0) {  // the last token of the last page was just deleted
    await tokensTab(body, registry, shown, Math.max(0, offset - PAGE));
    return;
  }
  const list = page.items.length
    ? table(["Name", "Scopes", "Expires", "Status", "Last use", h("span", { class: "visually-hidden" }, "Actions")],
      page.items.map((token) => tokenRow(body, registry, token, offset)), "Tokens")
    : h("p", { class: "muted", id: "no-tokens" }, "No tokens yet. Create one below to let CI or a machine push or pull.");
  const pager = page.total > PAGE ? h("div", { class: "pager" },
    offset > 0 ? h("button", {
      type: "button", class: "secondary", onclick: () => tokensTab(body, registry, null, Math.max(0, offset - PAGE)),
    }, "Previous page") : null,
    page.next ? h("button", {
      type: "button", class: "secondary", onclick: () => tokensTab(body, registry, null, offset + PAGE),
    }, "Next page") : null,
    h("span", { class: "muted", id: "token-count" }, `${offset + 1}-${offset + page.items.length} of ${page.total}`)) : null;
  replace(body, shown, h("h2", {}, "Tokens"), list, pager, createForm(body, registry));
}

function status(token) {
  const p = token.properties;
  const m = token.metadata;
  const badges = [];
  if (p.oneTime) badges.push(badge("one-time", "info"));
  if (p.oneTime && m.consumedAt) badges.push(badge("spent", "off"));
  else if (p.status !== "enabled") badges.push(badge("disabled", "off"));
  else if (p.expiryDate && new Date(p.expiryDate) <= new Date()) badges.push(badge("expired", "off"));
  else badges.push(badge("enabled", "ok"));
  return badges;
}

function lastUse(token) {
  const m = token.metadata;
  if (token.properties.oneTime && m.consumedAt) return h("span", {}, "spent ", when(m.consumedAt));
  return when(m.lastUsedAt || m.firstUsedAt, "never used");
}

function tokenRow(body, registry, token, offset) {
  const p = token.properties;
  const href = path("registries", registry.id, "tokens", token.id);
  const enabled = p.status === "enabled";
  const spent = p.oneTime && token.metadata.consumedAt;
  const toggle = h("button", {
    type: "button", class: "small secondary", disabled: Boolean(spent),
    "aria-label": `${enabled ? "Disable" : "Enable"} token ${p.name}`,
    onclick: async () => {
      try {
        await patch(href, { status: enabled ? "disabled" : "enabled" });
        toast(`Token ${p.name} ${enabled ? "disabled" : "enabled"}`);
        await tokensTab(body, registry, null, offset);
      } catch (failure) {
        toast(errorText(failure));
      }
    },
  }, enabled ? "Disable" : "Enable");
  const drop = h("button", {
    type: "button", class: "small danger", "aria-label": `Delete token ${p.name}`,
    onclick: async () => {
      const sure = await confirmDialog({
        title: `Delete token ${p.name}?`,
        body: "Clients using it are refused within seconds, the tokens they already hold included.",
        action: "Delete token",
      });
      if (!sure) return;
      try {
        await remove(href);
        toast(`Token ${p.name} deleted`);
        await tokensTab(body, registry, null, offset);
      } catch (failure) {
        toast(errorText(failure));
      }
    },
  }, "Delete");
  return h("tr", { dataset: { token: p.name } },
    cell("Name", h("strong", {}, p.name)),
    cell("Scopes", h("ul", { class: "plain" }, p.scopes.map((scope) =>
      h("li", {}, h("code", {}, scope.type === "registry" ? "catalog" : scope.name), ": ", scope.actions.join(", "))))),
    cell("Expires", p.expiryDate ? when(p.expiryDate) : h("span", { class: "muted" }, "never")),
    cell("Status", status(token)),
    cell("Last use", lastUse(token)),
    cell("", h("div", { class: "actions" }, toggle, drop)));
}

function scopeRow(container) {
  rowNumber += 1;
  const n = rowNumber;
  const pattern = h("input", {
    id: `scope-pattern-${n}`, class: "scope-pattern", value: "*", required: true, spellcheck: "false", autocomplete: "off",
    "aria-describedby": "scope-hint",
  });
  const kind = h("select", { id: `scope-type-${n}`, class: "scope-type" },
    h("option", { value: "repository" }, "repositories"), h("option", { value: "registry" }, "catalog (list repositories)"));
  const checks = ACTIONS.map((action) => h("label", {},
    h("input", { type: "checkbox", value: action, class: "scope-action", checked: action !== "delete" }), action));
  const row = h("div", { class: "scope-row", role: "group", "aria-label": `Scope ${n}` },
    h("div", { class: "field" }, h("label", { for: `scope-type-${n}` }, "Grants"), kind),
    h("div", { class: "field" }, h("label", { for: `scope-pattern-${n}` }, "Repository pattern"), pattern),
    h("fieldset", { class: "checks" }, h("legend", { class: "visually-hidden" }, `Actions of scope ${n}`), checks),
    h("button", {
      type: "button", class: "small danger", "aria-label": `Remove scope ${n}`,
      onclick: () => {
        if (container.querySelectorAll(".scope-row").length > 1) row.remove();
        else toast("A token needs at least one scope");
      },
    }, "Remove"));
  kind.addEventListener("change", () => {
    const catalog = kind.value === "registry";
    pattern.value = catalog ? "catalog" : "*";
    pattern.disabled = catalog;
    for (const label of checks) {
      const box = label.querySelector("input");
      box.checked = box.value === "pull";
      box.disabled = catalog;
    }
  });
  return row;
}

function readScopes(container) {
  return [...container.querySelectorAll(".scope-row")].map((row) => ({
    type: row.querySelector(".scope-type").value,
    name: row.querySelector(".scope-pattern").value.trim(),
    actions: [...row.querySelectorAll(".scope-action:checked")].map((box) => box.value),
  }));
}

function createForm(body, registry) {
  const error = h("p", { class: "error", role: "alert", id: "create-token-error" });
  const name = h("input", { id: "token-name", required: true, pattern: "[A-Za-z0-9._\\-]{1,64}", autocomplete: "off", spellcheck: "false" });
  const scopes = h("div", { id: "token-scopes" });
  scopes.append(scopeRow(scopes));
  const expiry = h("select", { id: "token-expiry" }, EXPIRY.map(([value, label]) => h("option", { value }, label)));
  const oneTime = h("input", { type: "checkbox", id: "token-one-time" });
  const submit = h("button", { type: "submit", id: "create-token" }, "Create token");
  const form = h("form", { "aria-labelledby": "create-token-title", class: "card" },
    h("h2", { id: "create-token-title" }, "Create a token"),
    h("div", { class: "field" }, h("label", { for: "token-name" }, "Name (the username clients log in with)"), name),
    h("fieldset", {}, h("legend", {}, "Scopes"),
      h("p", { class: "hint", id: "scope-hint" }, "Patterns: * (every repository), team/* (under team/), team/app (one repository)."),
      scopes,
      h("button", { type: "button", class: "small secondary", id: "add-scope", onclick: () => scopes.append(scopeRow(scopes)) }, "Add scope")),
    h("div", { class: "field" }, h("label", { for: "token-expiry" }, "Expires after"), expiry),
    h("div", { class: "checks" }, h("label", { for: "token-one-time" }, oneTime,
      "One-time: usable until it writes its first tag (a CI release job)")),
    h("div", { class: "actions" }, submit), error);
  onSubmit(form, submit, error, async () => {
    const request = { name: name.value.trim(), scopes: readScopes(scopes), oneTime: oneTime.checked };
    if (expiry.value !== "never") {
      request.expiryDate = new Date(Date.now() + Number(expiry.value) * 86400000).toISOString();
    }
    const created = await post(path("registries", registry.id, "tokens"), request);
    await tokensTab(body, registry, shownOnce(registry, created));
    document.getElementById("token-password-title").focus();
  });
  return form;
}

function shownOnce(registry, created) {
  const { username, password } = created.properties.credentials;
  const host = registryHost(registry.properties.hostname);
  return h("section", { class: "card secret", id: "token-created", "aria-labelledby": "token-password-title" },
    h("h2", { id: "token-password-title", tabindex: "-1" }, `Token ${username} created`),
    h("p", {}, h("strong", {}, "Copy the password now: it is shown this once."), " Only a hash of it is kept."),
    h("dl", { class: "facts" },
      h("dt", {}, "Username"), h("dd", {}, h("code", { id: "token-username" }, username)),
      h("dt", {}, "Password"), h("dd", {}, h("code", { id: "token-password" }, password))),
    h("p", {}, "Log in with it:"),
    h("div", { id: "token-docker-login" }, command(`docker login ${host} -u ${username} -p ${password}`, "docker login command")));
}
