/**
 * The transcript growing chunk by chunk while a job runs: the text of each
 * finished chunk from GetPartialTranscript, in time order, marked provisional
 * (not merged, not checked for doubtful text) until the stored transcript
 * replaces it.
 */
import type { PartialChunk } from "../../typescript/src/gen/reelscribe/v1/transcript_service_pb.js";
import { type Api, problem } from "./api.js";
import { clock, h } from "./dom.js";

export class PartialTranscript {
  readonly root: HTMLElement;
  private readonly list = h("ol", { class: "transcript partial", id: "partial" });
  private readonly facts = h("p", { class: "muted", id: "partial-facts", "aria-live": "polite" });
  private readonly chunks = new Map<number, PartialChunk>();
  private chunkCount = 0;
  /** The stored transcript exists (or the page moved on): nothing more to fetch. */
  private closed = false;
  /** A fetch failed: the next one asks for every finished chunk again. */
  private behind = false;
  /** Fetches one at a time, so chunks are drawn in the order they arrive. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly api: Api,
    private readonly name: string,
    private readonly signal: AbortSignal,
    /** Called once the server says the transcript is stored. */
    private readonly onStored: () => void,
  ) {
    this.root = h(
      "section",
      { class: "card transcript-card provisional", "aria-labelledby": "partial-h", hidden: true },
      h("h2", { id: "partial-h" }, "Transcript so far ", h("span", { class: "badge" }, "provisional")),
      this.facts,
      this.list,
    );
  }

  /** Fetches the chunks at `indexes` (every finished chunk when empty) not shown yet. */
  fetch(indexes: number[] = []): void {
    if (this.closed) return;
    this.queue = this.queue.then(async () => {
      const all = indexes.length === 0 || this.behind;
      const wanted = all ? [] : indexes.filter((i) => !this.chunks.has(i));
      if (this.closed || (!all && wanted.length === 0)) return;
      await this.load(wanted);
    });
  }

  /** Stops fetching: the stored transcript is shown. */
  close(): void {
    this.closed = true;
  }

  private async load(indexes: number[]): Promise<void> {
    try {
      const reply = await this.api.transcripts.getPartialTranscript(
        { name: this.name, chunkIndexes: indexes, omitWords: true },
        { signal: this.signal },
      );
      this.behind = false;
      for (const chunk of reply.chunks) this.chunks.set(chunk.index, chunk);
      this.chunkCount = reply.chunkCount;
      this.draw();
    } catch (err) {
      if (this.signal.aborted) return;
      if (problem(err).reason === "TRANSCRIPT_READY") {
        this.closed = true;
        this.onStored();
        return;
      }
      // A dropped call: the next chunk's event fetches whatever is missing.
      this.behind = true;
    }
  }

  private draw(): void {
    if (this.closed) return;
    const indexes = [...this.chunks.keys()].sort((a, b) => a - b);
    const items: HTMLElement[] = [];
    let expected = 0;
    for (const index of indexes) {
      if (index > expected) items.push(gap(expected, index));
      expected = index + 1;
      const chunk = this.chunks.get(index)!;
      for (const s of chunk.segments) {
        items.push(
          h(
            "li",
            { class: "line provisional", "data-chunk": index, "data-start": s.startSeconds },
            h("span", { class: "time" }, clock(s.startSeconds)),
            h("span", { class: "text" }, s.text.trim()),
          ),
        );
      }
    }
    if (this.chunkCount > expected) items.push(gap(expected, this.chunkCount));
    this.list.replaceChildren(...items);
    this.facts.textContent =
      `${this.chunks.size} of ${this.chunkCount} chunks transcribed. Provisional text: ` +
      "the final transcript (joined, checked, with languages and speakers) replaces it when the job finishes.";
    this.root.hidden = false;
  }
}

/** A placeholder for chunks `from` to `to` (exclusive) still being transcribed. */
function gap(from: number, to: number): HTMLElement {
  const what = to - from === 1 ? `chunk ${from + 1}` : `chunks ${from + 1}–${to}`;
  return h("li", { class: "line pending", "data-chunks": `${from}-${to}` }, h("span", { class: "text muted" }, `… ${what} being transcribed`));
}
