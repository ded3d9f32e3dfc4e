// Garbage collection as a registry shows it: its schedule, and its last run (the registry's
// `lastGarbageCollection`: null before the first run).

import { bytes, h, when } from "./dom.js";

export function schedule(gc) {
  if (!gc) return "not scheduled";
  return `${gc.days.join(", ")} at ${gc.time} UTC`;
}

const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;

// `run`: {startedAt, finishedAt, manifests, links, blobs, bytes} (what it removed and freed)
export function lastCollection(run, id = "gc-last-run") {
  if (!run) return h("span", { class: "muted", id }, "never run");
  if (!run.finishedAt) return h("span", { id }, "running since ", when(run.startedAt));
  const removed = [
    Number.isInteger(run.manifests) ? count(run.manifests, "manifest", "manifests") : null,
    Number.isInteger(run.blobs) ? count(run.blobs, "blob", "blobs") : null,
  ].filter(Boolean);
  return h("span", { id }, when(run.finishedAt),
    Number.isInteger(run.bytes) ? `: ${bytes(run.bytes)} freed` : "",
    removed.length ? ` (${removed.join(", ")} removed)` : "");
}
