// The console's shell: who is signed in, the router (#/… in the address, so that every page
// has a link and the back button works), and the sign-in page.

import { ApiError, get, post, remove, setCsrfToken, whenSignedOut } from "./api.js";
import { errorText, h, onSubmit, replace } from "./dom.js";
import { auditPage } from "./pages/audit.js";
import { registriesPage } from "./pages/registries.js";
import { registryPage } from "./pages/registry.js";
import { repositoryPage } from "./pages/repository.js";

const main = document.getElementById("main");
const who = document.getElementById("who");
const nav = document.getElementById("nav");
let signedIn = false;

const ID = "([0-9a-f]{32})";
const ROUTES = [
  [/^#?\/?$/, "registries", () => registriesPage(main)],
  [new RegExp(`^#/registries/${ID}$`), "registries", (id) => registryPage(main, id, "repositories")],
  [new RegExp(`^#/registries/${ID}/tokens$`), "registries", (id) => registryPage(main, id, "tokens")],
  [new RegExp(`^#/registries/${ID}/repositories/(.+)$`), "registries",
    (id, name) => repositoryPage(main, id, decodeURIComponent(name))],
  [/^#\/audit(?:\?(.*))?$/, "audit", (query) => auditPage(main, new URLSearchParams(query || ""))],
];

async function render() {
  if (!signedIn) return;
  const hash = location.hash;
  if (hash === "#main") return; // the skip link
  for (const [pattern, section, page] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      for (const link of nav.querySelectorAll("a")) {
        if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
        else link.removeAttribute("aria-current");
      }
      replace(main, h("p", { class: "loading" }, "Loading…"));
      try {
        await page(...match.slice(1));
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) return;
        replace(main, h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, errorText(error)),
          h("p", {}, h("a", { href: "#/" }, "Back to the registries")));
      }
      const heading = main.querySelector("h1");
      if (heading) {
        heading.tabIndex = -1;
        heading.focus({ preventScroll: true });
        document.title = `${heading.textContent} · ocigate console`;
      }
      return;
    }
  }
  replace(main, h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "#/" }, "Go to the registries")));
}

function showUser(username, withSession = true) {
  signedIn = true;
  nav.hidden = false;
  if (!withSession) {
    replace(who, h("span", {}, "Authentication is off on this server"));
    return;
  }
  const signOut = h("button", { type: "button", class: "secondary small", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", async () => {
    try {
      await remove("/api/sessions/current");
    } finally {
      showSignIn("You have signed out.");
    }
  });
  replace(who, h("span", {}, "Signed in as ", h("strong", { id: "username" }, username)), signOut);
}

function showSignIn(note) {
  signedIn = false;
  setCsrfToken(null);
  nav.hidden = true;
  replace(who);
  document.title = "Sign in · ocigate console";
  const error = h("p", { class: "error", role: "alert", id: "sign-in-error" });
  const username = h("input", { id: "username-input", name: "username", autocomplete: "username", required: true });
  const password = h("input", {
    id: "password-input", name: "password", type: "password", autocomplete: "current-password", required: true,
  });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { "aria-describedby": "sign-in-error" },
    h("div", { class: "field" }, h("label", { for: "username-input" }, "Username"), username),
    h("div", { class: "field" }, h("label", { for: "password-input" }, "Password"), password),
    submit, error);
  onSubmit(form, submit, error, async () => {
    const session = await post("/api/sessions", { username: username.value, password: password.value });
    setCsrfToken(session.properties.csrfToken);
    showUser(session.properties.username);
    if (!location.hash || location.hash === "#main") location.hash = "#/";
    await render();
  }, (failure) => {
    if (failure.status === 401) error.textContent = "Wrong username or password.";
    password.select();
  });
  replace(main, h("section", { class: "signin", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in to ocigate"),
    note ? h("p", { class: "muted" }, note) : null,
    h("p", { class: "muted" }, "Use an account user's name and password. Registry tokens are for docker, not for the console."),
    form));
  username.focus();
}

async function start() {
  whenSignedOut(() => {
    if (signedIn) showSignIn("Your session has ended. Sign in again.");
  });
  window.addEventListener("hashchange", render);
  document.getElementById("skip").addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });
  try {
    const session = await get("/api/sessions/current");
    setCsrfToken(session.properties.csrfToken);
    showUser(session.properties.username);
  } catch (error) {
    if (error.status === 404) showUser("anonymous", false); // OCIGATE_AUTH=none: no session to have
    else return showSignIn();
  }
  await render();
}

start();
