/**
 * One job's page: live progress (a bar per stage, the ETA, chunks as they
 * finish, and their provisional text) from WatchJob, resumed with `after_seq`
 * when the stream drops; then the player beside the transcript, exports,
 * summary, chapters and highlights.
 */
import type { Job, JobEvent } from "../../typescript/src/gen/reelscribe/v1/job_pb.js";
import { JobEventKind, JobState, Stage } from "../../typescript/src/gen/reelscribe/v1/job_pb.js";
import { type Api, Code, ConnectError, problem, transient } from "./api.js";
import { clock, h, page, problemBox } from "./dom.js";
import { stageName, stateName } from "./home.js";
import { PartialTranscript } from "./partial.js";
import { Results } from "./results.js";

const TERMINAL = new Set([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED]);

export function showJob(api: Api, name: string, startAt: number | null, signal: AbortSignal): void {
  const main = page(name);
  const view = new JobView(api, name, startAt, signal);
  main.append(view.root);
  void view.follow();
}

class JobView {
  readonly root: HTMLElement;
  private readonly title = h("h1", {}, "");
  private readonly status = h("p", { class: "status", "aria-live": "polite" });
  private readonly overall = h("progress", { max: 1, value: 0, id: "overall", "aria-label": "Overall progress" });
  private readonly overallPct = h("span", { class: "pct" });
  private readonly eta = h("span", { class: "eta", id: "eta" });
  private readonly stages = h("ul", { class: "stages", id: "stages" });
  private readonly chunks = h("div", { class: "chunks", id: "chunks", "aria-label": "Transcribed chunks" });
  private readonly problems = h("div");
  private readonly log = h("ol", { class: "log", id: "events" });
  private readonly body = h("div", { class: "results" });
  private readonly stageRows = new Map<Stage, { bar: HTMLProgressElement; pct: HTMLElement }>();
  private lastSeq = 0n;
  /** The job's last event when the current watch began (its snapshot). */
  private snapshotSeq = 0n;
  private job: Job | null = null;
  private resultsShown = false;
  private insightsShown = false;
  private results: Results | null = null;
  private readonly partial: PartialTranscript;
  private partialPrimed = false;

  constructor(
    private readonly api: Api,
    private readonly name: string,
    private readonly startAt: number | null,
    private readonly signal: AbortSignal,
  ) {
    this.partial = new PartialTranscript(api, name, signal, () => this.tryResults());
    this.body.append(this.partial.root);
    this.root = h(
      "div",
      { class: "job-page", "data-job": name },
      h("p", {}, h("a", { href: "#/" }, "← Jobs")),
      this.title,
      this.status,
      this.problems,
      h(
        "section",
        { class: "card progress", "aria-label": "Progress" },
        h("div", { class: "row" }, this.overall, this.overallPct, this.eta),
        this.stages,
        this.chunks,
        h("details", {}, h("summary", {}, "Event log"), this.log),
      ),
      this.body,
    );
  }

  /** Watches the job to its end; a dropped stream resumes after the last event seen. */
  async follow(): Promise<void> {
    let failures = 0;
    while (!this.signal.aborted) {
      try {
        const stream = this.api.jobs.watchJob({ name: this.name, afterSeq: this.lastSeq }, { signal: this.signal });
        for await (const { event } of stream) {
          failures = 0;
          if (event) this.apply(event);
        }
        if (this.job && TERMINAL.has(this.job.state)) return;
        // The server ended the stream early (it is stopping): go on from the last event.
        await new Promise((r) => setTimeout(r, 500));
      } catch (err) {
        if (this.signal.aborted) return;
        if (err instanceof ConnectError && err.code === Code.OutOfRange) {
          this.lastSeq = 0n; // the log is shorter than we thought: replay it all
          continue;
        }
        if (!transient(err) || ++failures > 20) {
          this.problems.replaceChildren(problemBox(problem(err)));
          return;
        }
        this.status.textContent = "Connection lost; reconnecting…";
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** failures)));
      }
    }
  }

  private apply(event: JobEvent): void {
    if (event.kind === JobEventKind.HEARTBEAT) return;
    if (event.seq > 0n) {
      if (event.seq <= this.lastSeq) return; // already drawn
      this.lastSeq = event.seq;
      this.logEvent(event);
    }
    if (event.kind === JobEventKind.SNAPSHOT && event.job) {
      this.snapshotSeq = event.job.lastEventSeq;
      // On load: every chunk finished so far, in one call (a running job only);
      // the chunk events replayed after the snapshot then find theirs shown.
      if (event.job.state === JobState.RUNNING && !this.partialPrimed) {
        this.partialPrimed = true;
        this.partial.fetch();
      }
    }
    // Events replayed from before the snapshot are older than it: they draw the
    // stage bars and the log, but the job's header keeps the snapshot's state.
    if (event.job && (event.seq === 0n || event.seq >= this.snapshotSeq)) this.drawJob(event.job);
    if (event.kind === JobEventKind.STAGE_STARTED) {
      // A stage that ends by handing over to the next (merge) has no finished event.
      this.passStages(event.stage);
      this.stageBar(event.stage, 0);
    }
    // Nor does the stage a job succeeds in (the terminal event closes it).
    if (event.job?.state === JobState.SUCCEEDED) this.passStages(Stage.UNSPECIFIED);
    if (event.kind === JobEventKind.PROGRESS || event.kind === JobEventKind.PARTIAL_RESULT) {
      this.stageBar(event.stage, event.stageProgress);
    }
    if (event.kind === JobEventKind.STAGE_FINISHED) {
      this.stageBar(event.stage, 1);
      // The transcript is stored once merged and indexed, before the insight stages run.
      if (event.stage === Stage.INDEX) this.tryResults();
    }
    if (event.kind === JobEventKind.PARTIAL_RESULT && event.chunkCount > 0) {
      this.chunk(event.chunkIndex, event.chunkCount);
      // A chunk not seen before (live, or replayed by a resumed watch): its text.
      if (this.job && !TERMINAL.has(this.job.state)) this.partial.fetch([event.chunkIndex]);
    }
    if (event.eta && this.job && !TERMINAL.has(this.job.state)) {
      const s = Number(event.eta.seconds) + event.eta.nanos / 1e9;
      this.eta.textContent = `about ${clock(s)} left`;
    }
  }

  private drawJob(job: Job): void {
    this.job = job;
    const title = job.labels["title"] || (job.source.case === "sourceUri" ? job.source.value : job.name);
    this.title.textContent = title;
    document.title = `${title} · Reelscribe`;
    this.root.dataset.state = stateName(job.state);
    this.root.dataset.lastSeq = String(this.lastSeq);
    this.overall.value = job.progress;
    this.overallPct.textContent = `${(job.progress * 100).toFixed(1)}%`;
    const where = TERMINAL.has(job.state) ? "" : ` · ${stageName(job.stage)}`;
    this.status.textContent = `${stateName(job.state)}${where}${job.message ? ` — ${job.message}` : ""}`;
    if (TERMINAL.has(job.state)) this.eta.textContent = "";
    const notes: HTMLElement[] = [];
    if (job.error && job.error.reason) {
      notes.push(
        h(
          "div",
          { class: "problem", role: "alert", "data-reason": job.error.reason },
          h("strong", {}, job.error.message),
          h("div", { class: "muted" }, `${job.error.reason} · in ${stageName(job.error.stage)}`),
        ),
      );
    }
    for (const w of job.warnings) {
      notes.push(h("div", { class: "warning", role: "status" }, h("strong", {}, w.code), ` ${w.message}`));
    }
    this.problems.replaceChildren(...notes);
    if (job.state === JobState.SUCCEEDED && this.results && !this.insightsShown) {
      this.insightsShown = true;
      void this.results.insights().catch((err) => this.body.append(problemBox(problem(err))));
    }
    if (job.state === JobState.SUCCEEDED || job.state === JobState.FAILED) this.tryResults();
  }

  /** Shows the transcript and what else is ready, once (again if it was not stored yet). */
  private tryResults(): void {
    if (this.resultsShown || !this.job) return;
    this.resultsShown = true;
    void this.showResults(this.job);
  }

  private async showResults(job: Job): Promise<void> {
    try {
      this.results = await Results.open(this.api, job, this.body, this.startAt);
      this.partial.close(); // the stored transcript replaced it
      if (this.job?.state === JobState.SUCCEEDED && !this.insightsShown) {
        this.insightsShown = true;
        await this.results.insights();
      }
    } catch (err) {
      const reason = problem(err).reason;
      if (reason === "TRANSCRIPT_NOT_READY" || reason === "TRANSCRIPT_NOT_FOUND") {
        this.resultsShown = false; // not stored (yet): the job's end tries again
        return;
      }
      this.body.replaceChildren(problemBox(problem(err)));
    }
  }

  private stageBar(stage: Stage, fraction: number): void {
    if (stage === Stage.UNSPECIFIED || stage === Stage.QUEUED) return;
    let row = this.stageRows.get(stage);
    if (!row) {
      const label = stageName(stage);
      const bar = h("progress", { max: 1, value: 0, "aria-label": label });
      const pct = h("span", { class: "pct" });
      this.stages.append(h("li", { "data-stage": label }, h("span", { class: "stage-name" }, label), bar, pct));
      row = { bar, pct };
      this.stageRows.set(stage, row);
    }
    // Chunks finish out of order; a stage's bar never moves back.
    const value = Math.max(row.bar.value, fraction);
    row.bar.value = value;
    if (!row.pct.dataset.passed) row.pct.textContent = `${(value * 100).toFixed(0)}%`;
  }

  /** Marks the stages begun before `current` that never reported their end as done. */
  private passStages(current: Stage): void {
    for (const [stage, row] of this.stageRows) {
      if (stage !== current && row.bar.value < 1 && !row.pct.dataset.passed) {
        row.pct.dataset.passed = "true";
        row.pct.textContent = "done";
        row.bar.parentElement?.classList.add("passed");
      }
    }
  }

  private chunk(index: number, count: number): void {
    while (this.chunks.children.length < count) {
      const i = this.chunks.children.length;
      this.chunks.append(h("span", { class: "cell", title: `chunk ${i + 1}`, "data-index": i }));
    }
    const cell = this.chunks.children[index] as HTMLElement | undefined;
    cell?.classList.add("done");
    const done = this.chunks.querySelectorAll(".done").length;
    this.chunks.setAttribute("aria-label", `${done} of ${count} chunks transcribed`);
  }

  private logEvent(event: JobEvent): void {
    const kind = JobEventKind[event.kind].toLowerCase().replace(/_/g, " ");
    this.log.append(
      h(
        "li",
        { "data-seq": String(event.seq), value: Number(event.seq) },
        `${kind} · ${stageName(event.stage)}${event.message ? ` — ${event.message}` : ""}`,
      ),
    );
  }
}
