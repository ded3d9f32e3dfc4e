// Building the page: elements from data, never HTML from strings (API values are text only).

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

export function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function replace(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

const UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

export function bytes(count) {
  let value = count;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

// A size to read ("2.8 KB"), with the exact count of bytes in its title.
export function size(count) {
  return h("span", { class: "size", title: `${count} bytes`, dataset: { bytes: String(count) } }, bytes(count));
}

// A time as "3 minutes ago" with the exact moment (local and UTC) in a <time> element.
export function when(iso, empty = "never") {
  if (!iso) return h("span", { class: "muted" }, empty);
  const moment = new Date(iso);
  const seconds = Math.round((moment.getTime() - Date.now()) / 1000);
  const steps = [[60, "second"], [60, "minute"], [24, "hour"], [30, "day"], [12, "month"], [Infinity, "year"]];
  let amount = seconds;
  let unit = "second";
  for (const [size, name] of steps) {
    unit = name;
    if (Math.abs(amount) < size) break;
    amount = Math.round(amount / size);
  }
  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }).format(amount, unit);
  return h("time", { datetime: iso, title: `${moment.toLocaleString()} (${iso})` }, relative);
}

export function shortDigest(digest) {
  const [algorithm, hex] = digest.split(":");
  return `${algorithm}:${hex.slice(0, 12)}`;
}

export function toast(message) {
  const region = document.getElementById("toast");
  region.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { region.textContent = ""; }, 4000);
}

export async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    toast(`Copied ${what}`);
  } catch {
    toast(`Could not copy: select the ${what} and copy it by hand`);
  }
}

export function copyButton(text, what, label = "Copy") {
  return h("button", {
    type: "button", class: "small secondary", "aria-label": `Copy ${what}`,
    onclick: () => copy(text, what),
  }, label);
}

// A command to paste into a terminal, with its copy button.
export function command(text, what = "command") {
  return h("div", { class: "command" }, h("code", {}, text), copyButton(text, what));
}

export function digestCell(digest) {
  return h("span", { class: "digest" },
    h("code", { title: digest }, shortDigest(digest)), " ", copyButton(digest, "digest"));
}

// A form whose submission calls the API: the button is off meanwhile, a failure is said in
// `error` (an alert region) and passed to `failed`.
export function onSubmit(form, submit, error, action, failed = () => {}) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      await action();
    } catch (failure) {
      error.textContent = errorText(failure);
      failed(failure);
    } finally {
      submit.disabled = false;
    }
  });
}

export function badge(text, kind = "plain") {
  return h("span", { class: `badge ${kind}` }, text);
}

export function errorText(error) {
  return error && error.messages ? error.messages.join("; ") : String(error && error.message ? error.message : error);
}

// A cell of a table that becomes a labelled card on a phone (console.css).
export function cell(label, ...children) {
  return h("td", { "data-label": label }, h("div", {}, ...children));
}

export function table(headings, rows, caption) {
  return h("table", { class: "cards" },
    caption ? h("caption", { class: "visually-hidden" }, caption) : null,
    h("thead", {}, h("tr", {}, headings.map((text) => h("th", { scope: "col" }, text)))),
    h("tbody", {}, rows));
}

// A modal that asks before something irreversible; `typed` makes the user type a name first.
export function confirmDialog({ title, body, action, typed }) {
  return new Promise((resolve) => {
    const input = typed ? h("input", { id: "confirm-typed", autocomplete: "off", spellcheck: "false" }) : null;
    const go = h("button", { type: "submit", class: "danger solid", disabled: Boolean(typed) }, action);
    const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
    const dialog = h("dialog", { "aria-labelledby": "confirm-title" },
      h("form", { method: "dialog" },
        h("h2", { id: "confirm-title" }, title),
        h("p", {}, body),
        typed ? h("div", { class: "field" },
          h("label", { for: "confirm-typed" }, "Type ", h("code", {}, typed), " to confirm"), input) : null,
        h("div", { class: "actions" }, go, cancel)));
    if (input) input.addEventListener("input", () => { go.disabled = input.value !== typed; });
    let confirmed = false;
    go.addEventListener("click", () => { confirmed = true; });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => { dialog.remove(); resolve(confirmed); });
    document.body.append(dialog);
    dialog.showModal();
    (input || cancel).focus();
  });
}
