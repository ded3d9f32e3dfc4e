// One repository: its manifests, tagged or not, with what each is (image, multi-platform index,
// or an artifact such as a signature or an SBOM, with the manifests that refer to it), the
// pull lines to copy, and deletes of tags and manifests.

import { get, path, remove, withQuery } from "../api.js";
import {
  badge, cell, command, confirmDialog, copyButton, digestCell, errorText, h, replace, shortDigest, size, table, toast, when,
} from "../dom.js";
import { plainHttp, registryHost } from "../hosts.js";

const PAGE = 50;

// what an artifact type says to a person
export function artifactLabel(artifactType) {
  const type = (artifactType || "").toLowerCase();
  if (/cosign|signature|notary|\.sig/.test(type)) return "signature";
  if (/spdx|cyclonedx|sbom|syft/.test(type)) return "SBOM";
  if (/in-toto|attestation|provenance/.test(type)) return "attestation";
  if (/helm/.test(type)) return "Helm chart";
  return "artifact";
}

export async function repositoryPage(main, registryId, name, cursors = [null]) {
  const registry = await get(path("registries", registryId));
  const base = path("registries", registryId, "repositories", name);
  const [repository, page] = await Promise.all([
    get(base),
    get(withQuery(`${base}/artifacts`, { limit: PAGE, cursor: cursors[cursors.length - 1] })),
  ]);
  const host = registryHost(registry.properties.hostname);
  const reference = `${host}/${name}`;
  const r = repository.properties;
  const firstTag = page.items.flatMap((artifact) => artifact.properties.tags)[0];
  const pullTarget = firstTag ? `${reference}:${firstTag}` : page.items.length ? `${reference}@${page.items[0].id}` : null;
  const reload = () => repositoryPage(main, registryId, name, cursors);
  // the manifests an index on this page lists: shown as its platforms, not as strays
  const parents = new Map();
  for (const artifact of page.items) {
    for (const child of artifact.properties.children) {
      parents.set(child.digest, { index: artifact.properties, platform: child.platform });
    }
  }
  const rows = page.items.map((artifact) => artifactRow(artifact, base, reference, reload, parents.get(artifact.id)));
  const from = (cursors.length - 1) * PAGE;
  replace(main,
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Registries"), " / ",
      h("a", { href: `#/registries/${registryId}` }, registry.properties.name), " / ", name),
    h("h1", {}, name),
    h("dl", { class: "facts" },
      h("dt", {}, "Artifacts"), h("dd", {}, String(r.artifactCount)),
      h("dt", {}, "Size"), h("dd", { id: "repository-size" }, size(r.size)),
      h("dt", {}, "Last push"), h("dd", {}, when(r.lastPushedAt)),
      h("dt", {}, "Last pull"), h("dd", {}, when(r.lastPulledAt)),
      h("dt", {}, "Pushes / pulls"), h("dd", {}, `${r.pushCount} / ${r.pullCount}`)),
    pullTarget ? h("section", { "aria-labelledby": "pull-title" },
      h("h2", { id: "pull-title" }, "Pull"),
      command(`docker pull ${pullTarget}`, "docker pull command"),
      command(`ctr images pull${plainHttp() ? " --plain-http" : ""} --user USERNAME ${pullTarget}`, "ctr pull command")) : null,
    h("h2", {}, "Tags and manifests"),
    rows.length ? table(["Tags", "Digest", "Kind", "Size", "Created", "Pushed", "Referrers",
      h("span", { class: "visually-hidden" }, "Actions")], rows, "Tags and manifests")
      : h("p", { class: "muted" }, "No manifests: only blobs were pushed here so far."),
    h("div", { class: "pager" },
      cursors.length > 1 ? h("button", {
        type: "button", class: "secondary", onclick: () => repositoryPage(main, registryId, name, cursors.slice(0, -1)),
      }, "Previous page") : null,
      page.next ? h("button", {
        type: "button", class: "secondary",
        onclick: () => repositoryPage(main, registryId, name,
          [...cursors, new URL(page.next, location.href).searchParams.get("cursor")]),
      }, "Next page") : null,
      h("span", { class: "muted" }, page.total ? `${from + 1}-${from + page.items.length} of ${page.total}` : "")));
}

function kindCell(p) {
  if (p.kind === "index") {
    return [badge("index", "info"), h("div", { class: "muted" }, p.platforms.length ? p.platforms.join(", ") : "no platforms listed")];
  }
  if (p.kind === "artifact") {
    return [badge(artifactLabel(p.artifactType), "warn"), h("div", { class: "muted mono" }, p.artifactType || p.mediaType),
      p.subject ? h("div", {}, "refers to ", h("code", { title: p.subject }, shortDigest(p.subject))) : null];
  }
  return [badge("image", "ok"), h("div", { class: "muted mono" }, p.mediaType.replace("application/vnd.", ""))];
}

function untagged(parent) {
  if (!parent) return h("span", { class: "muted" }, "untagged");
  const index = parent.index.tags.length ? parent.index.tags.join(", ") : shortDigest(parent.index.digest);
  return h("span", { class: "muted" }, `${parent.platform || "attestation"} of ${index}`);
}

function artifactRow(artifact, base, reference, reload, parent) {
  const p = artifact.properties;
  const tagList = p.tags.length
    ? p.tags.map((tag) => h("span", { class: "tag" }, h("code", {}, tag),
      copyButton(`${reference}:${tag}`, `reference ${tag}`, "Copy"),
      h("button", {
        type: "button", class: "small danger", "aria-label": `Delete tag ${tag}`,
        onclick: () => deleteTag(base, tag, reload),
      }, "Delete")))
    : untagged(parent);
  const referrers = p.referrers.length
    ? h("ul", { class: "plain" }, p.referrers.map((referrer) => h("li", {},
      badge(artifactLabel(referrer.artifactType), "warn"), h("code", { title: referrer.digest }, shortDigest(referrer.digest)))))
    : h("span", { class: "muted" }, "none");
  return h("tr", { dataset: { digest: p.digest, tags: p.tags.join(" ") } },
    cell("Tags", tagList),
    cell("Digest", digestCell(p.digest)),
    cell("Kind", kindCell(p)),
    cell("Size", size(p.size)),
    cell("Created", when(artifact.metadata.createdAt)),
    cell("Pushed", when(artifact.metadata.pushedAt)),
    cell("Referrers", referrers),
    cell("", h("button", {
      type: "button", class: "small danger", "aria-label": `Delete manifest ${shortDigest(p.digest)}`,
      onclick: () => deleteManifest(base, p, reload),
    }, "Delete manifest")));
}

async function deleteTag(base, tag, reload) {
  const sure = await confirmDialog({
    title: `Delete tag ${tag}?`,
    body: "The tag goes; the manifest it points at stays, untagged, until you delete it too.",
    action: "Delete tag",
  });
  if (!sure) return;
  try {
    await remove(`${base}/tags/${encodeURIComponent(tag)}`);
    toast(`Tag ${tag} deleted`);
    await reload();
  } catch (failure) {
    toast(errorText(failure));
  }
}

async function deleteManifest(base, p, reload) {
  const tags = p.tags.length ? ` and its tags ${p.tags.join(", ")}` : "";
  const sure = await confirmDialog({
    title: `Delete manifest ${shortDigest(p.digest)}?`,
    body: `The manifest${tags} can no longer be pulled. This cannot be undone.`,
    action: "Delete manifest",
  });
  if (!sure) return;
  try {
    await remove(`${base}/artifacts/${encodeURIComponent(p.digest)}`);
    toast("Manifest deleted");
    await reload();
  } catch (failure) {
    if (failure.status === 404) {
      window.location.hash = window.location.hash.replace(/\/repositories\/.*$/, "");
      return;
    }
    toast(errorText(failure));
  }
}
