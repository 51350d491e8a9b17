/**
 * The media player. It plays the browser's own copy of an upload (kept in
 * IndexedDB when it was sent, or fetched once with ReadMedia and kept), a
 * `source_uri` directly when the browser can play it, or a file the user
 * picks.
 */
import type { Job } from "../../typescript/src/gen/reelscribe/v1/job_pb.js";
import { type Api, problem } from "./api.js";
import { h, problemBox } from "./dom.js";
import { media } from "./store.js";

/** Types by file name, for a fetched copy (the browser sniffs the rest). */
const TYPES: Record<string, string> = {
  mp3: "audio/mpeg",
  m4a: "audio/mp4",
  wav: "audio/wav",
  ogg: "audio/ogg",
  opus: "audio/ogg",
  flac: "audio/flac",
  mp4: "video/mp4",
  webm: "video/webm",
  mov: "video/quicktime",
  mkv: "video/x-matroska",
};

export class Player {
  readonly root = h("section", { class: "card player", "aria-label": "Player" });
  readonly element: HTMLVideoElement = h("video", { controls: true, preload: "metadata", id: "player" });
  private readonly note = h("p", { class: "muted" });
  private pendingSeek: number | null = null;

  constructor(
    private readonly api: Api,
    private readonly job: Job,
  ) {
    this.root.append(this.element, this.note);
    this.element.addEventListener("loadedmetadata", () => {
      if (this.pendingSeek !== null) this.element.currentTime = this.pendingSeek;
      this.pendingSeek = null;
    });
  }

  /** Finds something to play. */
  async load(): Promise<void> {
    const source = this.job.source;
    if (source.case === "media") {
      const blob = await media.get(source.value).catch(() => undefined);
      if (blob) return this.play(blob);
      this.askForFile();
    } else if (source.case === "sourceUri") {
      this.element.src = source.value;
      this.element.addEventListener("error", () => this.askForFile(), { once: true });
    }
  }

  private play(blob: Blob): void {
    this.element.src = URL.createObjectURL(blob);
    this.element.classList.toggle("audio", blob.type.startsWith("audio/"));
  }

  /** Streams the upload back from the server (resuming after a drop) and keeps it. */
  private async fetchCopy(name: string, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    const parts: Uint8Array[] = [];
    let received = 0n;
    let filename = "";
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          for await (const res of this.api.jobs.readMedia({ name, offsetBytes: received })) {
            parts.push(res.data);
            received += BigInt(res.data.length);
            filename = res.filename;
            if (res.sizeBytes > 0n) {
              button.textContent = `Loading… ${Math.floor(Number((received * 100n) / res.sizeBytes))}%`;
            }
          }
          break;
        } catch (err) {
          if (attempt >= 3 || received === 0n) throw err;
        }
      }
      const ext = filename.split(".").pop()?.toLowerCase() ?? "";
      const blob = new Blob(parts as BlobPart[], { type: TYPES[ext] ?? "" });
      this.play(blob);
      void media.put(name, blob);
      this.note.replaceChildren();
    } catch (err) {
      button.disabled = false;
      button.textContent = "Load the recording from the server";
      this.note.append(problemBox(problem(err)));
    }
  }

  private askForFile(): void {
    const input = h("input", { type: "file", accept: "audio/*,video/*", id: "pick-media" });
    input.addEventListener("change", () => {
      const file = input.files?.[0];
      if (!file) return;
      this.play(file);
      if (this.job.source.case === "media") void media.put(this.job.source.value, file);
      this.note.replaceChildren();
    });
    const parts: (Node | string)[] = ["This browser has no copy of the recording. "];
    const source = this.job.source;
    if (source.case === "media") {
      const fetch = h("button", { type: "button", id: "load-media" }, "Load the recording from the server");
      fetch.addEventListener("click", () => void this.fetchCopy(source.value, fetch));
      parts.push(fetch, " or ");
    }
    parts.push(h("label", { for: "pick-media" }, "choose the file to play it: "), input);
    this.note.replaceChildren(...parts);
  }

  /** Moves to `seconds` (before the media is loaded: once it is) and plays. */
  seek(seconds: number, play = true): void {
    if (this.element.readyState >= HTMLMediaElement.HAVE_METADATA) this.element.currentTime = seconds;
    else this.pendingSeek = seconds;
    if (play) void this.element.play().catch(() => undefined);
  }

  onTime(listener: (seconds: number) => void): void {
    this.element.addEventListener("timeupdate", () => listener(this.element.currentTime));
    this.element.addEventListener("seeked", () => listener(this.element.currentTime));
  }
}
