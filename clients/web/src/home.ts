/**
 * The home page: drop a file or paste a URL to start a job, uploads in
 * progress (resumed after a reload), and the job list, kept live by WatchJobs.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";

import type { Job } from "../../typescript/src/gen/reelscribe/v1/job_pb.js";
import { JobState, Stage } from "../../typescript/src/gen/reelscribe/v1/job_pb.js";
import { type Api, problem, transient } from "./api.js";
import { bytes, h, page, problemBox } from "./dom.js";
import { media, pending, type PendingUpload } from "./store.js";
import { begin, send, type UploadStatus } from "./upload.js";

/** Stages a user can ask for beyond the transcript (each brings what it needs). */
const EXTRAS: [Stage, string][] = [
  [Stage.ANALYZE, "Summary and chapters"],
  [Stage.HIGHLIGHTS, "Highlights"],
  [Stage.RENDER_CLIPS, "Highlight clips"],
  [Stage.DIARIZE, "Speakers"],
];

export function showHome(api: Api, signal: AbortSignal): void {
  const main = page("Jobs");
  const uploads = h("div", { class: "uploads", "aria-live": "polite" });
  const list = h("ul", { class: "jobs", id: "jobs" });
  const note = h("div");
  const extras = EXTRAS.map(([stage, label]) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", value: String(stage) }), ` ${label}`),
  );
  const chosenStages = () =>
    extras.map((l) => l.querySelector("input")!).filter((i) => i.checked).map((i) => Number(i.value) as Stage);

  const fileInput = h("input", { type: "file", id: "file", accept: "audio/*,video/*", class: "visually-hidden" });
  const drop = h(
    "label",
    { for: "file", class: "drop", id: "drop" },
    h("strong", {}, "Drop a recording here"),
    h("span", {}, " or choose a file"),
  );
  const startFile = (file: File) => void uploadAndCreate(api, file, chosenStages(), uploads, signal);
  fileInput.addEventListener("change", () => {
    if (fileInput.files?.[0]) startFile(fileInput.files[0]);
    fileInput.value = "";
  });
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer?.files[0];
    if (file) startFile(file);
  });

  const url = h("input", { type: "url", id: "url", placeholder: "https://…", required: true });
  const urlForm = h(
    "form",
    {
      class: "url",
      onsubmit: (e: Event) => {
        e.preventDefault();
        // A row for the link, where an error about it shows.
        const row = h("div", { class: "upload", "data-file": url.value }, h("strong", {}, url.value));
        uploads.append(row);
        void createJob(api, { case: "sourceUri", value: url.value }, url.value, chosenStages(), row, signal);
      },
    },
    h("label", { for: "url" }, "Or a link to a recording or a page with one"),
    h("div", { class: "row" }, url, h("button", { type: "submit" }, "Transcribe")),
  );

  main.append(
    h(
      "section",
      { class: "card", "aria-labelledby": "new-h" },
      h("h1", { id: "new-h" }, "New transcript"),
      fileInput,
      drop,
      urlForm,
      h("fieldset", { class: "extras" }, h("legend", {}, "Also make"), extras),
      uploads,
    ),
    h("section", { "aria-labelledby": "jobs-h" }, h("h2", { id: "jobs-h" }, "Jobs"), note, list),
  );

  void resumePending(api, uploads, signal);
  void followJobs(api, list, note, signal);
}

/** Upload ids this page is sending now (the page may be left and opened again meanwhile). */
const sending = new Set<string>();

/** Uploads left unfinished by a reload or a lost connection go on by themselves. */
async function resumePending(api: Api, box: HTMLElement, signal: AbortSignal): Promise<void> {
  for (const upload of await pending.all()) {
    if (signal.aborted) return;
    if (!sending.has(upload.uploadId)) void sendAndCreate(api, upload, box, signal);
  }
}

async function uploadAndCreate(api: Api, file: File, stages: Stage[], box: HTMLElement, signal: AbortSignal) {
  const view = uploadView(file.name, box);
  try {
    const upload = await begin(file, stages, view.update);
    await sendAndCreate(api, upload, box, signal, view);
  } catch (err) {
    view.fail(err);
  }
}

async function sendAndCreate(
  api: Api,
  upload: PendingUpload,
  box: HTMLElement,
  signal: AbortSignal,
  view = uploadView(upload.file.name, box),
): Promise<void> {
  sending.add(upload.uploadId);
  try {
    const stored = await send(api, upload, view.update);
    await media.put(stored.name, upload.file);
    // The job is made even if the user left this page meanwhile; it opens only if not.
    const source = { case: "media" as const, value: stored.name };
    await createJob(api, source, upload.file.name, upload.stages, view.row, signal, upload.uploadId);
  } catch (err) {
    view.fail(err);
  } finally {
    sending.delete(upload.uploadId);
  }
}

function uploadView(name: string, box: HTMLElement) {
  const bar = h("progress", { max: 1, value: 0 });
  const text = h("span", { class: "muted" });
  const row = h("div", { class: "upload", "data-file": name }, h("div", {}, h("strong", {}, name), " ", text), bar);
  box.append(row);
  return {
    row,
    update(s: UploadStatus) {
      bar.max = Math.max(1, s.total);
      bar.value = s.done;
      const verb = { hashing: "checking", uploading: "uploaded", retrying: "uploaded", done: "uploaded" }[s.phase];
      text.textContent = `${verb} ${bytes(s.done)} of ${bytes(s.total)}${s.message ? ` — ${s.message}` : ""}`;
      row.dataset.phase = s.phase;
    },
    fail(err: unknown) {
      row.replaceChildren(h("strong", {}, name), problemBox(problem(err)));
    },
  };
}

async function createJob(
  api: Api,
  source: { case: "media" | "sourceUri"; value: string },
  title: string,
  stages: Stage[],
  // Where an error shows: the upload's or the link's row.
  box: HTMLElement,
  signal: AbortSignal,
  // The upload's id for an uploaded file: asking twice (after a reload) makes one job.
  requestId: string = crypto.randomUUID(),
): Promise<void> {
  try {
    const { job } = await api.jobs.createJob({
      requestId,
      source,
      options: { extraStages: stages },
      labels: { title },
    });
    if (job && !signal.aborted) location.hash = `#/${job.name}`;
  } catch (err) {
    box.append(problemBox(problem(err)));
  }
}

/** The list, then every job event as it happens (resuming after the last cursor). */
async function followJobs(api: Api, list: HTMLElement, note: HTMLElement, signal: AbortSignal): Promise<void> {
  const rows = new Map<string, HTMLElement>();
  const put = (job: Job, atTop: boolean) => {
    const row = jobRow(job);
    const old = rows.get(job.name);
    if (old) old.replaceWith(row);
    else if (atTop) list.prepend(row);
    else list.append(row);
    rows.set(job.name, row);
  };
  try {
    const { jobs } = await api.jobs.listJobs({ pageSize: 50 });
    for (const job of jobs) put(job, false);
    if (jobs.length === 0) note.replaceChildren(h("p", { class: "muted" }, "No jobs yet."));
  } catch (err) {
    note.replaceChildren(problemBox(problem(err)));
    return;
  }
  let cursor = "";
  let failures = 0;
  while (!signal.aborted) {
    try {
      for await (const res of api.jobs.watchJobs({ afterCursor: cursor }, { signal })) {
        failures = 0;
        if (res.cursor) cursor = res.cursor;
        const job = res.event?.job;
        if (job?.name) {
          note.replaceChildren();
          put(job, true);
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      if (!transient(err) || ++failures > 10) {
        note.replaceChildren(problemBox(problem(err)));
        return;
      }
      await new Promise((r) => setTimeout(r, 500 * failures));
    }
  }
}

export function stateName(state: JobState): string {
  return JobState[state].toLowerCase();
}

export function stageName(stage: Stage): string {
  return Stage[stage].toLowerCase().replace(/_/g, " ");
}

function jobRow(job: Job): HTMLElement {
  const title = job.labels["title"] || (job.source.case === "sourceUri" ? job.source.value : job.name);
  const running = job.state === JobState.RUNNING || job.state === JobState.QUEUED;
  return h(
    "li",
    { class: `job state-${stateName(job.state)}`, "data-job": job.name },
    h("a", { href: `#/${job.name}` }, title),
    h("span", { class: "badge" }, stateName(job.state)),
    // The stage while it runs, else when the job was made (the server's clock, shown locally).
    h(
      "span",
      { class: "muted" },
      running ? stageName(job.stage) : job.createTime ? timestampDate(job.createTime).toLocaleString() : "",
    ),
    h("progress", { max: 1, value: job.progress, "aria-label": `${title} progress` }),
    h("span", { class: "pct" }, `${(job.progress * 100).toFixed(0)}%`),
  );
}
