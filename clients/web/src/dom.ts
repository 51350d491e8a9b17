/** A few DOM helpers: the console builds its pages from plain elements. */
import { forgetToken, type Problem } from "./api.js";

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

/** `h("button", {class: "x", onclick: f}, "Go")`: an element with attributes, listeners, children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

/** The page's main area, emptied. */
export function page(title: string): HTMLElement {
  const main = document.getElementById("main")!;
  main.replaceChildren();
  document.title = `${title} · Reelscribe`;
  return main;
}

/** `83.4` → `1:23`, `3723` → `1:02:03`. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh > 0 ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** `1536000` → `1.5 MB`. */
export function bytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = n;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** An alert box that says what went wrong, with the server's details. */
export function problemBox(p: Problem): HTMLElement {
  return h(
    "div",
    { class: "problem", role: "alert", "data-code": p.code, "data-reason": p.reason },
    h("strong", {}, p.message || p.code),
    h("div", { class: "muted" }, [p.code, p.reason].filter(Boolean).join(" · ")),
    p.fields.length > 0 &&
      h("ul", {}, p.fields.map((f) => h("li", {}, h("code", {}, f.field), `: ${f.description}`))),
    p.quota.length > 0 && h("ul", {}, p.quota.map((q) => h("li", {}, q))),
    p.retryAfterS !== null && h("div", {}, `Try again in ${Math.ceil(p.retryAfterS)} s.`),
    p.requestId && h("div", { class: "muted" }, `Request id ${p.requestId}`),
    p.code === "UNAUTHENTICATED" &&
      h(
        "button",
        {
          type: "button",
          onclick: () => {
            forgetToken();
            location.hash = "#/";
            location.reload();
          },
        },
        "Sign in again",
      ),
  );
}

/** Saves text or bytes under a file name, as the browser's download. */
export function download(name: string, type: string, content: BlobPart): void {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
