// One registry: its facts, its repositories (search by name prefix, pages of 50) and its
// tokens (tokens.js). A registry without repositories shows how to push the first image.

import { get, path, withQuery } from "../api.js";
import { bytes, cell, command, h, replace, size, table, when } from "../dom.js";
import { lastCollection, schedule } from "../gc.js";
import { plainHttp, registryHost } from "../hosts.js";
import { tokensTab } from "./tokens.js";

const PAGE = 50;

export async function registryPage(main, id, tab) {
  const registry = await get(path("registries", id));
  const p = registry.properties;
  const body = h("div", { id: "registry-tab" });
  const tabLink = (name, href, label) =>
    h("a", { href, "aria-current": tab === name ? "page" : null, id: `tab-${name}` }, label);
  replace(main,
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Registries"), " / ", p.name),
    h("h1", {}, p.name),
    facts(p),
    h("nav", { class: "tabs", "aria-label": "Registry" },
      tabLink("repositories", `#/registries/${id}`, "Repositories"),
      tabLink("tokens", `#/registries/${id}/tokens`, "Tokens")),
    body);
  if (tab === "tokens") await tokensTab(body, registry);
  else await repositoriesTab(body, registry);
}

function facts(p) {
  return h("dl", { class: "facts" },
    h("dt", {}, "Hostname"), h("dd", {}, h("code", { id: "registry-host" }, registryHost(p.hostname))),
    h("dt", {}, "Location"), h("dd", {}, p.location),
    h("dt", {}, "Storage used"), h("dd", { id: "registry-storage" }, bytes(p.storageUsage.bytes)),
    h("dt", {}, "Repositories"), h("dd", { id: "registry-repositories" }, String(p.repositoryCount)),
    h("dt", {}, "Garbage collection"), h("dd", {}, schedule(p.garbageCollectionSchedule)),
    h("dt", {}, "Last garbage collection"), h("dd", {}, lastCollection(p.lastGarbageCollection)),
    h("dt", {}, "Allowed networks"),
    h("dd", {}, p.apiSubnetAllowList.length ? p.apiSubnetAllowList.join(", ") : "any (no allow list)"));
}

function firstPush(registry) {
  const host = registryHost(registry.properties.hostname);
  return h("div", { class: "card notice", id: "first-push" },
    h("h2", {}, "Push your first image"),
    h("p", {}, "Log in with your account user (or with a token from the Tokens tab), tag an image with this registry's hostname and push it:"),
    command(`docker login ${host}`, "docker login command"),
    command(`docker tag alpine:latest ${host}/team/alpine:latest`, "docker tag command"),
    command(`docker push ${host}/team/alpine:latest`, "docker push command"),
    plainHttp() ? h("p", { class: "hint", id: "plain-http-hint" }, "This server speaks plain HTTP: docker uses it once ",
      h("code", {}, host), " is among its insecure registries (",
      h("code", {}, `"insecure-registries": ["${host}"]`), " in /etc/docker/daemon.json, then restart docker); ",
      "podman and skopeo take ", h("code", {}, "--tls-verify=false"), ".") : null,
    h("p", { class: "muted" }, "For CI, create a token with push scope on the Tokens tab: it comes with its own docker login line."));
}

async function repositoriesTab(body, registry, prefix = "", cursors = [null]) {
  const cursor = cursors[cursors.length - 1];
  const page = await get(withQuery(path("registries", registry.id, "repositories"),
    { limit: PAGE, prefix, cursor }));
  if (page.total === 0 && !prefix) {
    replace(body, firstPush(registry));
    return;
  }
  const search = h("input", {
    id: "repository-search", type: "search", value: prefix, autocomplete: "off", spellcheck: "false",
    placeholder: "e.g. team/", pattern: "[a-z0-9._\\/\\-]*",
  });
  const form = h("form", { class: "inline", role: "search" },
    h("div", { class: "field" }, h("label", { for: "repository-search" }, "Repository name starts with"), search),
    h("button", { type: "submit", class: "secondary" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    repositoriesTab(body, registry, search.value.trim(), [null]).then(() => document.getElementById("repository-search").focus());
  });
  const rows = page.items.map((repository) => {
    const p = repository.properties;
    return h("tr", { dataset: { repository: p.name } },
      cell("Name", h("a", { href: `#/registries/${registry.id}/repositories/${encodeURIComponent(p.name)}` }, p.name)),
      cell("Artifacts", String(p.artifactCount)),
      cell("Size", size(p.size)),
      cell("Last push", when(p.lastPushedAt)),
      cell("Last pull", when(p.lastPulledAt)),
      cell("Pushes", String(p.pushCount)),
      cell("Pulls", String(p.pullCount)));
  });
  const from = (cursors.length - 1) * PAGE;
  const pager = h("div", { class: "pager" },
    cursors.length > 1 ? h("button", {
      type: "button", class: "secondary", onclick: () => repositoriesTab(body, registry, prefix, cursors.slice(0, -1)),
    }, "Previous page") : null,
    page.next ? h("button", {
      type: "button", class: "secondary",
      onclick: () => repositoriesTab(body, registry, prefix, [...cursors, new URL(page.next, location.href).searchParams.get("cursor")]),
    }, "Next page") : null,
    h("span", { class: "muted", id: "repository-count" },
      page.total ? `${from + 1}-${from + page.items.length} of ${page.total}` : `no repository starts with ${prefix}`));
  replace(body, form,
    rows.length ? table(["Name", "Artifacts", "Size", "Last push", "Last pull", "Pushes", "Pulls"], rows, "Repositories") : null,
    pager);
}
