/**
 * Resumable uploads from the browser: the file's SHA-256 computed piece by
 * piece (crypto.subtle hashes whole buffers only), then `AppendUpload` parts
 * of 1 MiB under a client-chosen upload id. After a failure or a reload,
 * `GetUpload` says how many bytes the server holds and the upload goes on
 * from there.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

import type { Media } from "../../typescript/src/gen/reelscribe/v1/job_pb.js";
import { type Api, Code, ConnectError, problem, transient } from "./api.js";
import { pending, type PendingUpload } from "./store.js";

/** The largest part `AppendUpload` accepts. */
export const PART_BYTES = 1024 * 1024;
const HASH_SLICE_BYTES = 8 * 1024 * 1024;

/** What the upload is doing, for the page to draw. */
export interface UploadStatus {
  phase: "hashing" | "uploading" | "retrying" | "done";
  /** Bytes hashed, or bytes the server reported stored. */
  done: number;
  total: number;
  message?: string;
}

/** Lowercase hex SHA-256 of a file, read in slices. */
export async function hashFile(file: Blob, report: (done: number) => void): Promise<string> {
  const hasher = sha256.create();
  for (let at = 0; at < file.size; at += HASH_SLICE_BYTES) {
    const slice = new Uint8Array(await file.slice(at, at + HASH_SLICE_BYTES).arrayBuffer());
    hasher.update(slice);
    report(Math.min(file.size, at + slice.length));
  }
  return bytesToHex(hasher.digest());
}

/** Starts (or restarts) an upload of `file`: hashes it and remembers it in the browser. */
export async function begin(
  file: File,
  stages: number[],
  report: (s: UploadStatus) => void,
): Promise<PendingUpload> {
  const sha = await hashFile(file, (done) => report({ phase: "hashing", done, total: file.size }));
  const known = (await pending.all()).find((u) => u.sha256 === sha && u.file.size === file.size);
  if (known) return known;
  const upload = { uploadId: crypto.randomUUID(), file, sha256: sha, stages };
  await pending.put(upload);
  return upload;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends the parts the server does not hold yet; returns the stored media. */
export async function send(api: Api, upload: PendingUpload, report: (s: UploadStatus) => void): Promise<Media> {
  const { file } = upload;
  let at = await where(api, upload.uploadId);
  if (at === "expired") {
    // The server dropped the bytes (idle too long): the same file under a new id.
    await pending.remove(upload.uploadId);
    upload = { ...upload, uploadId: crypto.randomUUID() };
    await pending.put(upload);
    at = 0;
  }
  const uploadId = upload.uploadId;
  if (typeof at !== "number") {
    await pending.remove(uploadId);
    return at;
  }
  let offset = at;
  const header = { filename: file.name, sizeBytes: BigInt(file.size), sha256: upload.sha256, uploadId };
  let failures = 0;
  for (;;) {
    report({ phase: "uploading", done: offset, total: file.size });
    const data = new Uint8Array(await file.slice(offset, offset + PART_BYTES).arrayBuffer());
    try {
      const res = await api.jobs.appendUpload({ header: { ...header, offsetBytes: BigInt(offset) }, data });
      failures = 0;
      offset = Number(res.storedBytes);
      if (res.media) {
        report({ phase: "done", done: offset, total: file.size });
        await pending.remove(uploadId);
        return res.media;
      }
    } catch (err) {
      const offsetMoved = err instanceof ConnectError && err.code === Code.FailedPrecondition;
      if (!transient(err) && !offsetMoved) throw err;
      if (++failures > 8) throw err;
      // The part may or may not have been stored: ask the server where to go on.
      const waitS = Math.min(30, 2 ** failures / 2);
      report({ phase: "retrying", done: offset, total: file.size, message: `connection lost; retrying in ${waitS} s` });
      await sleep(waitS * 1000);
      const now = await where(api, uploadId).catch(() => offset);
      if (typeof now === "number") offset = now;
      else if (now !== "expired") return now;
      else throw err;
    }
  }
}

/**
 * Where an upload stands on the server: the bytes it holds (0 for an id it
 * has never seen), its media once complete, or "expired".
 */
async function where(api: Api, uploadId: string): Promise<number | Media | "expired"> {
  try {
    const res = await api.jobs.getUpload({ uploadId });
    return res.media ?? Number(res.storedBytes);
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.NotFound) {
      return problem(err).reason === "UPLOAD_EXPIRED" ? "expired" : 0;
    }
    throw err;
  }
}
