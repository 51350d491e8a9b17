/**
 * The three services over gRPC-Web, with the bearer token, and the server's
 * errors turned into sentences from their `google.rpc` details.
 */
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import { JobService } from "../../typescript/src/gen/reelscribe/v1/job_service_pb.js";
import { SearchService } from "../../typescript/src/gen/reelscribe/v1/search_service_pb.js";
import { TranscriptService } from "../../typescript/src/gen/reelscribe/v1/transcript_service_pb.js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  QuotaFailureSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";

const TOKEN_KEY = "reelscribe.token";

/** The token: from a `#token=` fragment (then kept for the tab), or kept from before. */
export function takeToken(): string {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    // The token must not stay in the address bar (history, screenshots).
    history.replaceState(null, "", location.pathname + location.search + "#/");
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

export function saveToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

export interface Api {
  jobs: Client<typeof JobService>;
  transcripts: Client<typeof TranscriptService>;
  search: Client<typeof SearchService>;
}

/** Clients of the gRPC-Web listener that served this page. */
export function connect(token: string): Api {
  const bearer: Interceptor = (next) => async (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const transport = createGrpcWebTransport({
    baseUrl: location.origin,
    interceptors: [bearer],
    // Protobuf on the wire, as native gRPC clients send it.
    useBinaryFormat: true,
  });
  return {
    jobs: createClient(JobService, transport),
    transcripts: createClient(TranscriptService, transport),
    search: createClient(SearchService, transport),
  };
}

/** A failed call, as people read it. */
export interface Problem {
  /** The gRPC code's name, e.g. `INVALID_ARGUMENT`. */
  code: string;
  /** The server's message. */
  message: string;
  /** `ErrorInfo.reason`, e.g. `MEDIA_UNREADABLE`. */
  reason: string;
  /** `BadRequest` field violations. */
  fields: { field: string; description: string }[];
  /** `QuotaFailure` violations. */
  quota: string[];
  /** `RetryInfo.retry_delay` in seconds, when the server suggested one. */
  retryAfterS: number | null;
  /** The server's id of the failed call (`ErrorInfo.metadata.request_id`). */
  requestId: string;
}

/** Reads a thrown error: the server's details when it is a call's error. */
export function problem(err: unknown): Problem {
  const out: Problem = {
    code: "UNKNOWN",
    message: err instanceof Error ? err.message : String(err),
    reason: "",
    fields: [],
    quota: [],
    retryAfterS: null,
    requestId: "",
  };
  if (!(err instanceof ConnectError)) return out;
  out.code = codeName(err.code);
  out.message = err.rawMessage;
  for (const info of err.findDetails(ErrorInfoSchema)) {
    out.reason = info.reason;
    out.requestId = info.metadata["request_id"] ?? "";
  }
  for (const bad of err.findDetails(BadRequestSchema)) {
    for (const v of bad.fieldViolations) out.fields.push({ field: v.field, description: v.description });
  }
  for (const quota of err.findDetails(QuotaFailureSchema)) {
    for (const v of quota.violations) out.quota.push(v.description || v.subject);
  }
  for (const retry of err.findDetails(RetryInfoSchema)) {
    const d = retry.retryDelay;
    if (d) out.retryAfterS = Number(d.seconds) + d.nanos / 1e9;
  }
  return out;
}

/** UPPER_SNAKE name of a code, as the server's documentation spells it. */
export function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** True for failures worth retrying by themselves (a dropped stream, a restart). */
export function transient(err: unknown): boolean {
  if (!(err instanceof ConnectError)) return err instanceof TypeError; // fetch's network error
  // DEADLINE_EXCEEDED: the server's deadline ended a long watch; it resumes by after_seq.
  return [Code.Unavailable, Code.Unknown, Code.Aborted, Code.DeadlineExceeded].includes(err.code);
}

export { Code, ConnectError };
