// Garbage collection as a registry shows it: its schedule, and its last run once the API reports
// one (the registry's `lastGarbageCollection`: null before the first run; until the collector
// exists the field is absent, and the page says so rather than show a run that never was).

import { bytes, h, when } from "./dom.js";

export function schedule(gc) {
  if (!gc) return "not scheduled";
  return `${gc.days.join(", ")} at ${gc.time} UTC`;
}

const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;

// `run`: {startedAt, finishedAt (null while it runs), manifestsRemoved, blobsRemoved, bytesFreed}
export function lastCollection(run, id = "gc-last-run") {
  if (run === undefined) {
    return h("span", { class: "placeholder", id, dataset: { pending: "garbage-collection" } },
      "not available yet: garbage collection is not built");
  }
  if (run === null) return h("span", { class: "muted", id }, "never run");
  if (!run.finishedAt) return h("span", { id }, "running since ", when(run.startedAt));
  const removed = [
    Number.isInteger(run.manifestsRemoved) ? count(run.manifestsRemoved, "manifest", "manifests") : null,
    Number.isInteger(run.blobsRemoved) ? count(run.blobsRemoved, "blob", "blobs") : null,
  ].filter(Boolean);
  return h("span", { id }, when(run.finishedAt),
    Number.isInteger(run.bytesFreed) ? `: ${bytes(run.bytesFreed)} freed` : "",
    removed.length ? ` (${removed.join(", ")} removed)` : "");
}
