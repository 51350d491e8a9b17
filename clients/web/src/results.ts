/**
 * A job's results: the player beside the transcript (the current line lit,
 * a click on a word or a line seeks there), export downloads, and once the
 * job has succeeded its summary, chapters and highlights with their clips.
 */
import type { Job } from "../../typescript/src/gen/reelscribe/v1/job_pb.js";
import { Stage } from "../../typescript/src/gen/reelscribe/v1/job_pb.js";
import {
  ExportFormat,
  type Highlight,
  type Segment,
  SummaryFormat,
  type Transcript,
} from "../../typescript/src/gen/reelscribe/v1/transcript_service_pb.js";
import { type Api, problem } from "./api.js";
import { bytes, clock, download, h, problemBox } from "./dom.js";
import { Player } from "./player.js";

const INSIGHT_STAGES = new Set([Stage.ANALYZE, Stage.HIGHLIGHTS, Stage.RENDER_CLIPS]);

export class Results {
  private readonly side = h("div", { class: "side" });

  private constructor(
    private readonly api: Api,
    private readonly job: Job,
    private readonly player: Player,
  ) {}

  /** Reads the transcript and draws the player, the transcript and the exports. */
  static async open(api: Api, job: Job, box: HTMLElement, startAt: number | null): Promise<Results> {
    const { transcript } = await api.transcripts.getTranscript({ name: job.name });
    if (!transcript) throw new Error("the server sent no transcript");
    const player = new Player(api, job);
    const lines = transcriptView(transcript, (t) => player.seek(t));
    player.onTime((t) => lines.highlight(t));
    const results = new Results(api, job, player);
    box.replaceChildren(
      h(
        "div",
        { class: "reader" },
        h("div", { class: "stage" }, player.root, exportsView(api, job), results.side),
        h(
          "section",
          { class: "card transcript-card", "aria-labelledby": "transcript-h" },
          h("h2", { id: "transcript-h" }, "Transcript"),
          h("p", { class: "muted" }, transcriptFacts(transcript)),
          lines.root,
        ),
      ),
    );
    await player.load();
    if (startAt !== null && Number.isFinite(startAt)) player.seek(startAt, false);
    return results;
  }

  /** Summary, chapters and highlights, for the stages the job ran. */
  async insights(): Promise<void> {
    const asked = this.job.options?.extraStages ?? [];
    if (!asked.some((s) => INSIGHT_STAGES.has(s)) && (this.job.options?.highlightCount ?? 0) === 0) return;
    const name = this.job.name;
    const [summary, chapters, highlights] = await Promise.allSettled([
      this.api.transcripts.getSummary({ name, format: SummaryFormat.SHORT }),
      this.api.transcripts.listChapters({ name }),
      this.api.transcripts.listHighlights({ name }),
    ]);
    const parts: HTMLElement[] = [];
    if (summary.status === "fulfilled") {
      parts.push(h("section", { class: "card", id: "summary" }, h("h2", {}, "Summary"), h("p", {}, summary.value.text)));
    }
    if (chapters.status === "fulfilled" && chapters.value.chapters.length > 0) {
      parts.push(
        h(
          "section",
          { class: "card", id: "chapters" },
          h("h2", {}, "Chapters"),
          h(
            "ol",
            {},
            chapters.value.chapters.map((c) =>
              h(
                "li",
                {},
                h(
                  "button",
                  { class: "link", onclick: () => this.player.seek(c.startSeconds) },
                  h("span", { class: "time" }, clock(c.startSeconds)),
                  ` ${c.title}`,
                ),
              ),
            ),
          ),
        ),
      );
    }
    if (highlights.status === "fulfilled" && highlights.value.highlights.length > 0) {
      parts.push(
        h(
          "section",
          { class: "card", id: "highlights" },
          h("h2", {}, "Highlights"),
          h("ol", {}, highlights.value.highlights.map((hl) => this.highlightView(hl))),
        ),
      );
    }
    for (const r of [summary, chapters, highlights]) {
      // A stage the job did not run answers NOT_FOUND or FAILED_PRECONDITION: nothing to show.
      if (r.status === "rejected" && !["NOT_FOUND", "FAILED_PRECONDITION"].includes(problem(r.reason).code)) {
        parts.push(problemBox(problem(r.reason)));
      }
    }
    this.side.replaceChildren(...parts);
  }

  private highlightView(hl: Highlight): HTMLElement {
    const clipBox = h("div", { class: "clip" });
    const clipButtons =
      hl.clipSizeBytes > 0n
        ? [
            h("button", { onclick: () => void this.playClip(hl, clipBox) }, "Play clip"),
            h("button", { onclick: () => void this.downloadClip(hl, clipBox) }, "Download clip"),
          ]
        : [];
    return h(
      "li",
      { class: "highlight", "data-highlight": hl.name },
      h(
        "button",
        { class: "link", onclick: () => this.player.seek(hl.startSeconds) },
        h("span", { class: "time" }, `${clock(hl.startSeconds)}–${clock(hl.endSeconds)}`),
      ),
      hl.speaker && h("span", { class: "speaker" }, ` ${hl.speaker}`),
      h("p", {}, hl.text),
      h(
        "p",
        { class: "muted" },
        `score ${hl.score.toFixed(2)} · ${hl.reason}`,
        hl.clipSizeBytes > 0n &&
          h("span", { "data-clip-bytes": String(hl.clipSizeBytes) }, ` · clip ${bytes(Number(hl.clipSizeBytes))}`),
      ),
      h("div", { class: "row" }, clipButtons),
      clipBox,
    );
  }

  private clips = new Map<string, Promise<Blob>>();

  /** The clip's bytes from ReadClip, resuming from the bytes received if the stream drops. */
  private clip(hl: Highlight): Promise<Blob> {
    let found = this.clips.get(hl.name);
    if (!found) {
      found = readClip(this.api, hl);
      this.clips.set(hl.name, found);
      found.catch(() => this.clips.delete(hl.name));
    }
    return found;
  }

  private async playClip(hl: Highlight, box: HTMLElement): Promise<void> {
    try {
      const blob = await this.clip(hl);
      const tag = hl.clipMimeType.startsWith("audio/") ? "audio" : "video";
      const el = h(tag, { controls: true, src: URL.createObjectURL(blob), class: "clip-player" });
      box.replaceChildren(el);
      await el.play().catch(() => undefined);
    } catch (err) {
      box.replaceChildren(problemBox(problem(err)));
    }
  }

  private async downloadClip(hl: Highlight, box: HTMLElement): Promise<void> {
    try {
      const blob = await this.clip(hl);
      const ext = hl.clipMimeType.split("/")[1]?.split(";")[0] ?? "bin";
      download(`${hl.name.replace(/\//g, "-")}.${ext}`, hl.clipMimeType, blob);
    } catch (err) {
      box.replaceChildren(problemBox(problem(err)));
    }
  }
}

async function readClip(api: Api, hl: Highlight): Promise<Blob> {
  const parts: Uint8Array[] = [];
  let received = 0n;
  for (let attempt = 0; ; attempt++) {
    try {
      for await (const res of api.transcripts.readClip({ name: hl.name, offsetBytes: received })) {
        parts.push(res.data);
        received += BigInt(res.data.length);
      }
      return new Blob(parts as BlobPart[], { type: hl.clipMimeType });
    } catch (err) {
      if (attempt >= 3 || received === 0n) throw err;
    }
  }
}

function transcriptFacts(t: Transcript): string {
  const facts = [`${clock(t.durationSeconds)}`, `${t.segments.length} lines`, t.language, t.model];
  if (t.speakers.length > 0) facts.push(`${t.speakers.length} speakers`);
  return facts.filter(Boolean).join(" · ");
}

/** The transcript: one row per segment with its time, speaker and words. */
function transcriptView(t: Transcript, seek: (seconds: number) => void) {
  const starts = t.segments.map((s) => s.startSeconds);
  const rows: HTMLElement[] = [];
  const list = h("ol", { class: "transcript", id: "transcript" });
  const fragment = document.createDocumentFragment();
  for (const seg of t.segments) {
    const row = segmentRow(seg);
    rows.push(row);
    fragment.append(row);
  }
  list.append(fragment);
  // One listener for every word and line (thousands of them in a long recording).
  list.addEventListener("click", (e) => {
    const target = (e.target as HTMLElement).closest<HTMLElement>("[data-start]");
    if (target) seek(Number(target.dataset.start));
  });
  let current = -1;
  return {
    root: list,
    highlight(seconds: number) {
      // The last segment starting at or before `seconds` (binary search).
      let lo = 0;
      let hi = starts.length - 1;
      let found = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (starts[mid] <= seconds) {
          found = mid;
          lo = mid + 1;
        } else {
          hi = mid - 1;
        }
      }
      if (found === current) return;
      rows[current]?.classList.remove("current");
      rows[current]?.removeAttribute("aria-current");
      current = found;
      rows[current]?.classList.add("current");
      rows[current]?.setAttribute("aria-current", "true");
      rows[current]?.scrollIntoView({ block: "nearest" });
    },
  };
}

function segmentRow(seg: Segment): HTMLElement {
  const words =
    seg.words.length > 0
      ? seg.words.map((w) => h("span", { class: "word", "data-start": w.startSeconds }, w.text))
      : [seg.text];
  return h(
    "li",
    { class: seg.lowConfidence ? "line low" : "line", "data-index": seg.index },
    h(
      "button",
      {
        class: "time",
        "data-start": seg.startSeconds,
        "aria-label": `Play from ${clock(seg.startSeconds)}`,
      },
      clock(seg.startSeconds),
    ),
    seg.speaker && h("span", { class: "speaker" }, seg.speaker),
    h("span", { class: "text" }, words),
  );
}

function exportsView(api: Api, job: Job): HTMLElement {
  const status = h("div", { "aria-live": "polite" });
  const formats: [ExportFormat, string][] = [
    [ExportFormat.SRT, "SRT"],
    [ExportFormat.VTT, "VTT"],
    [ExportFormat.TXT, "TXT"],
    [ExportFormat.JSON, "JSON"],
  ];
  return h(
    "section",
    { class: "card exports", "aria-label": "Export" },
    h("span", {}, "Download "),
    formats.map(([format, label]) =>
      h(
        "button",
        {
          "data-format": label,
          onclick: async () => {
            try {
              const res = await api.transcripts.exportTranscript({ name: job.name, format });
              download(res.filename, res.mimeType, res.content);
              status.replaceChildren();
            } catch (err) {
              status.replaceChildren(problemBox(problem(err)));
            }
          },
        },
        label,
      ),
    ),
    status,
  );
}
