/** Library search: every hit is a moment, and opens its job there. */
import { type Api, problem } from "./api.js";
import { clock, h, page, problemBox } from "./dom.js";

export function showSearch(api: Api, query: string, signal: AbortSignal): void {
  const main = page("Search");
  const input = h("input", { type: "search", id: "q", value: query, required: true, "aria-label": "Search" });
  const results = h("div", { "aria-live": "polite" });
  main.append(
    h(
      "form",
      {
        class: "card search",
        role: "search",
        onsubmit: (e: Event) => {
          e.preventDefault();
          location.hash = `#/search?q=${encodeURIComponent(input.value)}`;
        },
      },
      h("h1", {}, "Search the library"),
      h("div", { class: "row" }, input, h("button", { type: "submit" }, "Search")),
    ),
    results,
  );
  input.focus();
  if (query) void run(api, query, results, signal);
}

async function run(api: Api, query: string, box: HTMLElement, signal: AbortSignal): Promise<void> {
  box.replaceChildren(h("p", { class: "muted" }, "Searching…"));
  try {
    const { hits } = await api.search.search({ query, pageSize: 20 }, { signal });
    if (hits.length === 0) {
      box.replaceChildren(h("p", {}, "Nothing matches."));
      return;
    }
    box.replaceChildren(
      h(
        "ol",
        { class: "hits", id: "hits" },
        hits.map((hit) =>
          h(
            "li",
            {},
            h(
              "a",
              { href: `#/${hit.job}?t=${hit.startSeconds}`, class: "hit" },
              h("span", { class: "time" }, `${clock(hit.startSeconds)}–${clock(hit.endSeconds)}`),
              hit.speaker && h("span", { class: "speaker" }, ` ${hit.speaker}`),
              h("span", { class: "snippet" }, snippet(hit.snippet)),
            ),
            h("span", { class: "muted" }, h("span", { "data-title": hit.job }, hit.job), ` · score ${hit.score.toFixed(2)}`),
          ),
        ),
      ),
    );
    await nameJobs(api, [...new Set(hits.map((hit) => hit.job))], box, signal);
  } catch (err) {
    if (!signal.aborted) box.replaceChildren(problemBox(problem(err)));
  }
}

/** Shows each hit's job by its title (the file name it was uploaded as), when it has one. */
async function nameJobs(api: Api, names: string[], box: HTMLElement, signal: AbortSignal): Promise<void> {
  await Promise.all(
    names.map(async (name) => {
      const { job } = await api.jobs.getJob({ name }, { signal }).catch(() => ({ job: undefined }));
      const title = job?.labels["title"];
      if (!title) return;
      for (const el of box.querySelectorAll<HTMLElement>("[data-title]")) {
        if (el.dataset.title === name) el.textContent = title;
      }
    }),
  );
}

/** The server marks matched terms with `[` and `]`: shown as <mark>. */
function snippet(text: string): (Node | string)[] {
  return text.split(/(\[[^\]]*\])/).map((part) =>
    part.startsWith("[") && part.endsWith("]") ? h("mark", {}, part.slice(1, -1)) : part,
  );
}
