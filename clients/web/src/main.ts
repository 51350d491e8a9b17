/**
 * Reelscribe's console: sign-in, routing between the pages, and the shell.
 *
 * Routes live in the fragment: `#/` (upload and jobs), `#/jobs/{id}?t=12.5`
 * (one job, at a moment), `#/search?q=…`. A `#token=…` fragment, as
 * `reelscribe up` prints it, signs the tab in.
 */
import { connect, forgetToken, saveToken, takeToken } from "./api.js";
import { h, page } from "./dom.js";
import { showHome } from "./home.js";
import { showJob } from "./job.js";
import { showSearch } from "./search.js";

/** Stops what the current page runs (its streams) when another one opens. */
let leave: AbortController = new AbortController();

function route(): void {
  leave.abort();
  leave = new AbortController();
  const token = takeToken();
  if (!token) return showSignIn();
  const api = connect(token);
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  const job = /^\/jobs\/([^/]+)$/.exec(path);
  markNav(job ? "" : path.startsWith("/search") ? "search" : "home");
  if (job) {
    const t = params.get("t");
    showJob(api, `jobs/${job[1]}`, t === null ? null : Number(t), leave.signal);
  } else if (path.startsWith("/search")) {
    showSearch(api, params.get("q") ?? "", leave.signal);
  } else {
    showHome(api, leave.signal);
  }
}

function markNav(current: string): void {
  for (const a of document.querySelectorAll<HTMLAnchorElement>("nav a[data-nav]")) {
    if (a.dataset.nav === current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function showSignIn(): void {
  const main = page("Sign in");
  const input = h("textarea", { id: "token", rows: 4, required: true, autocomplete: "off", spellcheck: "false" });
  main.append(
    h(
      "form",
      {
        class: "card signin",
        onsubmit: (e: Event) => {
          e.preventDefault();
          saveToken(input.value);
          route();
        },
      },
      h("h1", {}, "Sign in"),
      h(
        "p",
        {},
        "Paste an API token (",
        h("code", {}, "reelscribe token --user NAME"),
        "). `reelscribe up` prints an address that signs you in by itself.",
      ),
      h("label", { for: "token" }, "Token"),
      input,
      h("button", { type: "submit" }, "Sign in"),
    ),
  );
  input.focus();
}

document.getElementById("sign-out")!.addEventListener("click", () => {
  forgetToken();
  location.hash = "#/";
  route();
});
window.addEventListener("hashchange", route);
route();
