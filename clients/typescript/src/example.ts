/**
 * Upload a file to Reelscribe, create a transcription job and print its
 * progress as it streams, over the gRPC protocol (HTTP/2).
 *
 *   REELSCRIBE_TOKEN=... npx tsx src/example.ts lecture.mp4
 *
 * REELSCRIBE_SERVER_ADDRESS selects the server (default 127.0.0.1:50051).
 */
import { createHash, randomUUID } from "node:crypto";
import { open, readFile, stat } from "node:fs/promises";
import { basename } from "node:path";

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import {
  JobEventKind,
  JobState,
  Stage,
  type Job,
} from "./gen/reelscribe/v1/job_pb.js";
import { JobService } from "./gen/reelscribe/v1/job_service_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { UploadMediaRequestSchema } from "./gen/reelscribe/v1/job_service_pb.js";

const CHUNK_BYTES = 1024 * 1024;

function bearer(token: string): Interceptor {
  return (next) => async (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

async function* uploadMessages(
  path: string,
  sizeBytes: number,
  sha256: string,
): AsyncGenerator<MessageInitShape<typeof UploadMediaRequestSchema>> {
  yield {
    data: {
      case: "header",
      value: { filename: basename(path), sizeBytes: BigInt(sizeBytes), sha256, uploadId: randomUUID() },
    },
  };
  const file = await open(path);
  try {
    const buffer = new Uint8Array(CHUNK_BYTES);
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, CHUNK_BYTES);
      if (bytesRead === 0) break;
      yield { data: { case: "chunk", value: buffer.slice(0, bytesRead) } };
    }
  } finally {
    await file.close();
  }
}

/** Follows a job to its end, resuming after the last seen event if the stream drops. */
async function watch(client: ReturnType<typeof createClient<typeof JobService>>, name: string): Promise<Job> {
  let afterSeq = 0n;
  let last: Job | undefined;
  for (;;) {
    try {
      for await (const { event } of client.watchJob({ name, afterSeq })) {
        if (!event) continue;
        if (event.seq > 0n) afterSeq = event.seq;
        if (event.kind === JobEventKind.HEARTBEAT || !event.job) continue;
        last = event.job;
        const pct = (event.job.progress * 100).toFixed(1).padStart(5);
        console.log(
          `${String(event.seq).padStart(4)} ${pct}%  ${JobState[event.job.state].toLowerCase().padEnd(9)} ` +
            `${Stage[event.job.stage].toLowerCase().padEnd(14)} ${event.message}`,
        );
      }
      if (!last) throw new Error("the stream ended without events");
      return last;
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.Unavailable) continue;
      throw err;
    }
  }
}

async function main(): Promise<void> {
  const path = process.argv[2];
  const token = process.env.REELSCRIBE_TOKEN;
  if (!path || !token) {
    fail("usage: REELSCRIBE_TOKEN=... tsx src/example.ts FILE", 2);
  }
  const address = process.env.REELSCRIBE_SERVER_ADDRESS ?? "127.0.0.1:50051";
  const transport = createGrpcTransport({ baseUrl: `http://${address}`, interceptors: [bearer(token)] });
  const client = createClient(JobService, transport);

  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) fail(`no such file: ${path}`, 2);
  const sizeBytes = info.size;
  const sha256 = createHash("sha256").update(await readFile(path)).digest("hex");
  const { media } = await client.uploadMedia(uploadMessages(path, sizeBytes, sha256));
  if (!media) throw new Error("no media in the upload response");
  const { job } = await client.createJob({
    requestId: randomUUID(),
    source: { case: "media", value: media.name },
  });
  if (!job) throw new Error("no job in the response");
  console.log(job.name);
  const final = await watch(client, job.name);
  if (final.state !== JobState.SUCCEEDED) {
    fail(`${job.name} ended ${JobState[final.state]}: ${final.error?.reason} ${final.error?.message}`);
  }
}

/** Print one line on stderr and exit with `code`: no stack trace for a user to read. */
function fail(message: string, code = 1): never {
  console.error(`error: ${message}`);
  process.exit(code);
}

void main().catch((err: unknown) => {
  if (err instanceof ConnectError) fail(`${Code[err.code]}: ${err.rawMessage}`);
  fail(err instanceof Error ? err.message : String(err));
});
