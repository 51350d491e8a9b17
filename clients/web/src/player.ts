/**
 * The media player. The API keeps uploaded media for the workers but has no
 * call that streams it back, so the player plays the browser's own copy of an
 * upload (kept in IndexedDB when it was sent), a `source_uri` directly when
 * the browser can play it, or a file the user picks again.
 */
import type { Job } from "../../typescript/src/gen/reelscribe/v1/job_pb.js";
import { h } from "./dom.js";
import { media } from "./store.js";

export class Player {
  readonly root = h("section", { class: "card player", "aria-label": "Player" });
  readonly element: HTMLVideoElement = h("video", { controls: true, preload: "metadata", id: "player" });
  private readonly note = h("p", { class: "muted" });
  private pendingSeek: number | null = null;

  constructor(private readonly job: Job) {
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

  private askForFile(): void {
    const input = h("input", { type: "file", accept: "audio/*,video/*", id: "pick-media" });
    input.addEventListener("change", () => {
      const file = input.files?.[0];
      if (!file) return;
      this.play(file);
      if (this.job.source.case === "media") void media.put(this.job.source.value, file);
      this.note.replaceChildren();
    });
    this.note.replaceChildren(
      "This browser has no copy of the recording (the server does not stream media back). ",
      h("label", { for: "pick-media" }, "Choose the file to play it: "),
      input,
    );
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
