// The account's registries: create one, see each one's size and settings, delete one.

import { get, path, post, remove, withQuery } from "../api.js";
import { cell, confirmDialog, errorText, h, onSubmit, replace, size, table, toast } from "../dom.js";
import { lastCollection, schedule } from "../gc.js";

const PAGE = 50;
const NAME_PATTERN = "[a-z][a-z0-9\\-]{1,61}[a-z0-9]";

export async function registriesPage(main, offset = 0) {
  const page = await get(withQuery("/api/registries", { limit: PAGE, offset }));
  const list = h("div", { id: "registry-list" });
  replace(main, h("h1", {}, "Registries"), createForm(main), list);
  if (page.total === 0) {
    replace(list, h("div", { class: "card notice", id: "no-registries" },
      h("h2", {}, "No registries yet"),
      h("p", {}, "Create one above: it is served at its own hostname, and the registry's page then shows the ",
        h("code", {}, "docker login"), " and ", h("code", {}, "docker push"), " lines to use.")));
    return;
  }
  const rows = page.items.map((registry) => {
    const p = registry.properties;
    return h("tr", { dataset: { registry: p.name } },
      cell("Name", h("a", { href: `#/registries/${registry.id}` }, p.name)),
      cell("Hostname", h("code", {}, p.hostname)),
      cell("Location", p.location),
      cell("Storage used", size(p.storageUsage.bytes)),
      cell("Repositories", String(p.repositoryCount)),
      cell("Garbage collection", schedule(p.garbageCollectionSchedule),
        p.lastGarbageCollection === undefined ? null
          : h("div", { class: "muted" }, "last run: ", lastCollection(p.lastGarbageCollection, null))),
      cell("Allowed networks", p.apiSubnetAllowList.length ? p.apiSubnetAllowList.join(", ") : "any"),
      cell("", p.name === "default"
        ? h("span", { class: "muted", title: "Serves every host that names no registry; it cannot be deleted" }, "built in")
        : deleteButton(main, registry)));
  });
  const pager = h("div", { class: "pager" },
    offset > 0 ? h("button", { type: "button", class: "secondary", onclick: () => registriesPage(main, Math.max(0, offset - PAGE)) }, "Previous page") : null,
    page.next ? h("button", { type: "button", class: "secondary", onclick: () => registriesPage(main, offset + PAGE) }, "Next page") : null,
    h("span", { class: "muted" }, `${page.total} registr${page.total === 1 ? "y" : "ies"}`));
  replace(list, table(["Name", "Hostname", "Location", "Storage used", "Repositories", "Garbage collection",
    "Allowed networks", h("span", { class: "visually-hidden" }, "Actions")], rows, "Registries of the account"), pager);
}

function createForm(main) {
  const error = h("p", { class: "error", role: "alert", id: "create-registry-error" });
  const name = h("input", {
    id: "registry-name", name: "name", required: true, pattern: NAME_PATTERN, maxlength: 63,
    autocomplete: "off", spellcheck: "false", "aria-describedby": "registry-name-hint",
  });
  const place = h("select", { id: "registry-location", name: "location" }, h("option", { value: "local" }, "local"));
  get("/api/locations").then((found) => {
    replace(place, found.items.map((item) => h("option", { value: item.id, title: item.properties.description }, item.id)));
  }).catch(() => {});
  const submit = h("button", { type: "submit" }, "Create registry");
  const form = h("form", { class: "inline", "aria-labelledby": "create-registry-title" },
    h("h2", { id: "create-registry-title", class: "visually-hidden" }, "Create a registry"),
    h("div", { class: "field" }, h("label", { for: "registry-name" }, "New registry name"), name,
      h("span", { class: "hint", id: "registry-name-hint" }, "3-63 characters: a-z, 0-9 and -; it becomes the hostname")),
    h("div", { class: "field" }, h("label", { for: "registry-location" }, "Location"), place),
    submit, error);
  onSubmit(form, submit, error, async () => {
    const created = await post("/api/registries", { name: name.value, location: place.value });
    toast(`Registry ${created.properties.name} created`);
    window.location.hash = `#/registries/${created.id}`;
  }, () => name.focus());
  return form;
}

function deleteButton(main, registry) {
  const name = registry.properties.name;
  return h("button", {
    type: "button", class: "danger small", "aria-label": `Delete registry ${name}`,
    onclick: async () => {
      const sure = await confirmDialog({
        title: `Delete registry ${name}?`,
        body: "Every repository, image and token of this registry is deleted, and its hostname stops answering. This cannot be undone.",
        action: "Delete registry",
        typed: name,
      });
      if (!sure) return;
      try {
        await remove(path("registries", registry.id));
        toast(`Registry ${name} deleted`);
        await registriesPage(main);
      } catch (failure) {
        toast(`Not deleted: ${errorText(failure)}`);
      }
    },
  }, "Delete");
}
