// A dependency-free client of the AI job queue's HTTP API, for `fetch`: browsers, Next.js (edge
// and Node runtimes) and Node 20+. The types come from openapi.json (src/types.ts, generated).
import type {
  Decision,
  EnqueueRequest,
  FieldError,
  JobView,
  QueueStats,
} from "./types.js";

export type * from "./types.js";

/** A job as `GET /api/status` shows it. */
export type Job = JobView;
/** The optional fields of an enqueue body (`priority`, `delayMs`, `idempotencyKey`, ...). */
export type EnqueueOptions = Omit<EnqueueRequest, "type" | "data">;
/** A user's JWT or a service key, or a function that returns the current one. */
export type Token = string | (() => string | Promise<string>);

export interface ClientOptions {
  /** The API's root: `"/api"` on the same origin, `"http://127.0.0.1:3000/api"` for `make dev`. */
  baseUrl: string;
  token?: Token;
  /** Each request's timeout (10 s); a long-poll gets its `waitMs` on top. */
  timeoutMs?: number;
  /** Sent with every request. */
  headers?: Record<string, string>;
  /** Another `fetch` (a test's, or one with your own retries). */
  fetch?: typeof fetch;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface WaitOptions extends CallOptions {
  /** Give up after this long (5 minutes) with a `WaitTimeoutError`; `Infinity` never does. */
  timeoutMs?: number;
  /** Called with every new version of the job: the first one read, each change, the final one. */
  onUpdate?: (job: Job) => void | Promise<void>;
  /** The pause before asking again after an answer that came sooner than asked, unchanged. */
  pollIntervalMs?: number;
}

export interface RateLimitCheckOptions extends CallOptions {
  /** Service keys only: whose budget to check (users always check their own). */
  identifier?: string;
  cost?: number;
  /** false only reads the budget (true by default). */
  consume?: boolean;
}

/** The most a long-poll may ask the server to hold a request (SPEC section 10). */
export const MAX_WAIT_MS = 25_000;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_WAIT_TIMEOUT_MS = 300_000;
const DEFAULT_POLL_INTERVAL_MS = 500;
const EARLY_FRACTION = 0.9; // an answer sooner than this share of waitMs did not wait
const UNEXPECTED_REPLY = "unexpected_reply";
const FINAL_STATUSES: ReadonlySet<string> = new Set(["completed", "failed", "cancelled"]);

/** An error answer of the API: its problem+json fields, and `retryAfterS` from Retry-After. */
export class QueueApiError extends Error {
  override readonly name = "QueueApiError";
  readonly status: number;
  /** `validation_failed`, `not_found`, `rate_limited`, ...; `unexpected_reply` for a reply that
   * is not what the API documents (a proxy's page, a body of the wrong shape). */
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  readonly type: string;
  readonly requestId: string;
  /** Every refused field of a 422. */
  readonly errors: FieldError[];
  readonly retryAfterS: number | null;

  constructor(problem: ProblemFields, retryAfterS: number | null = null) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
    this.status = problem.status;
    this.code = problem.code;
    this.title = problem.title;
    this.detail = problem.detail;
    this.type = problem.type;
    this.requestId = problem.requestId;
    this.errors = problem.errors ?? [];
    this.retryAfterS = retryAfterS;
  }

  /** 429: over a rate limit; nothing was created or consumed. Retry after `retryAfterS`. */
  get rateLimited(): boolean {
    return this.status === 429;
  }

  /** 503: the queue cannot reach its Redis; nothing was half-written. Retry after `retryAfterS`. */
  get unavailable(): boolean {
    return this.status === 503;
  }
}

/** `wait` reached its timeout with the job not final; `job` is how it was last seen. */
export class WaitTimeoutError extends Error {
  override readonly name = "WaitTimeoutError";

  constructor(readonly job: Job, timeoutMs: number) {
    super(`job ${job.id} is still ${job.status} after ${timeoutMs} ms`);
  }
}

interface ProblemFields {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId: string;
  errors?: FieldError[];
}

interface RawReply {
  status: number;
  headers: Headers;
  text: string;
}

interface Call {
  method: "GET" | "POST" | "DELETE";
  path: string;
  params?: Record<string, string>;
  body?: unknown;
  headers?: Record<string, string>;
  ok: readonly number[];
  signal?: AbortSignal | undefined;
  extraTimeoutMs?: number;
}

export class QueueClient {
  readonly #baseUrl: string;
  readonly #token: Token | undefined;
  readonly #timeoutMs: number;
  readonly #headers: Record<string, string>;
  readonly #fetch: typeof fetch;

  constructor(options: ClientOptions) {
    if (typeof options?.baseUrl !== "string" || options.baseUrl === "") {
      throw new TypeError("baseUrl is the API's root, e.g. '/api' or 'http://127.0.0.1:3000/api'");
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
      throw new RangeError(`timeoutMs must be a number of milliseconds > 0, not ${timeoutMs}`);
    }
    this.#baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#token = options.token;
    this.#timeoutMs = timeoutMs;
    this.#headers = { ...options.headers };
    const fetchFunction = options.fetch ?? globalThis.fetch;
    if (typeof fetchFunction !== "function") throw new TypeError("no fetch: pass options.fetch");
    this.#fetch = fetchFunction.bind(globalThis);
  }

  /** `POST /api/enqueue`: a new job, or the one its `idempotencyKey` already created. */
  enqueue(
    type: string,
    data: Record<string, unknown>,
    options: EnqueueOptions & CallOptions = {},
  ): Promise<Job> {
    const { signal, idempotencyKey, ...fields } = options;
    const headers: Record<string, string> = {};
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    const body = { type, data, ...fields };
    return this.#request({ method: "POST", path: "enqueue", body, headers, ok: [200, 202], signal });
  }

  /** `POST /api/enqueue` with `{"jobs": [...]}`: every job or none (SPEC section 12). */
  async enqueueMany(jobs: EnqueueRequest[], options: CallOptions = {}): Promise<Job[]> {
    if (!Array.isArray(jobs)) throw new TypeError("enqueueMany takes an array of jobs");
    const { signal } = options;
    const call: Call = { method: "POST", path: "enqueue", body: { jobs }, ok: [200, 202], signal };
    const reply = await this.#request<{ jobs: Job[] }>(call);
    if (!Array.isArray(reply?.jobs)) throw unexpectedReply(202, null, "the reply has no jobs array");
    return reply.jobs;
  }

  status(id: string, options: CallOptions = {}): Promise<Job> {
    const params = { id: jobId(id) };
    return this.#request({ method: "GET", path: "status", params, ok: [200], signal: options.signal });
  }

  /** `DELETE /api/status`: the job `cancelled`, or (running) still `processing` with
   * `cancelRequested: true` while its worker stops it. */
  cancel(id: string, options: CallOptions = {}): Promise<Job> {
    const params = { id: jobId(id) };
    return this.#request({ method: "DELETE", path: "status", params, ok: [200, 202], signal: options.signal });
  }

  checkRateLimit(policy: string, options: RateLimitCheckOptions = {}): Promise<Decision> {
    const { signal, identifier, cost = 1, consume = true } = options;
    const body = { policy, cost, consume, ...(identifier === undefined ? {} : { identifier }) };
    return this.#request({ method: "POST", path: "ratelimit-check", body, ok: [200], signal });
  }

  /** `GET /api/stats` (service keys). */
  stats(options: CallOptions = {}): Promise<QueueStats> {
    return this.#request({ method: "GET", path: "stats", ok: [200], signal: options.signal });
  }

  /** The job once it is final. Reads it, then long-polls (`waitMs`, `after=<updatedAt>`);
   * pauses `pollIntervalMs` only after an answer that came sooner than asked with nothing
   * changed (a server that does not hold requests). Rejects with `WaitTimeoutError` after
   * `timeoutMs`, or with the signal's reason when it aborts. */
  async wait(id: string, options: WaitOptions = {}): Promise<Job> {
    const { signal, onUpdate } = options;
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
    const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    checkWaitOptions(timeoutMs, pollIntervalMs);
    const deadline = Date.now() + timeoutMs;
    let job = await this.status(id, { signal });
    await onUpdate?.(job);
    while (!FINAL_STATUSES.has(job.status)) {
      if (Date.now() >= deadline) throw new WaitTimeoutError(job, timeoutMs);
      const waitMs = Math.min(MAX_WAIT_MS, Math.ceil(deadline - Date.now()));
      const askedAt = Date.now();
      const latest = await this.#longPoll(job, waitMs, signal);
      const answeredEarly = Date.now() - askedAt < EARLY_FRACTION * waitMs;
      const changed = !sameVersion(job, latest);
      if (changed) await onUpdate?.(latest);
      else if (answeredEarly) await sleep(Math.min(pollIntervalMs, deadline - Date.now()), signal);
      job = latest;
    }
    return job;
  }

  /** `wait` without a timeout: `onUpdate` with every new version until the job is final (the
   * promise's value) or `signal` aborts. */
  watch(
    id: string,
    onUpdate: (job: Job) => void | Promise<void>,
    options: CallOptions = {},
  ): Promise<Job> {
    return this.wait(id, { onUpdate, signal: options.signal, timeoutMs: Infinity });
  }

  #longPoll(job: Job, waitMs: number, signal: AbortSignal | undefined): Promise<Job> {
    const params: Record<string, string> = { id: job.id, waitMs: String(waitMs) };
    if (job.updatedAt != null) params.after = String(job.updatedAt);
    const call: Call = { method: "GET", path: "status", params, ok: [200], signal, extraTimeoutMs: waitMs };
    return this.#request(call);
  }

  async #request<T>(call: Call): Promise<T> {
    const query = call.params ? `?${new URLSearchParams(call.params)}` : "";
    const headers: Record<string, string> = {
      Accept: "application/json",
      ...this.#headers,
      ...call.headers,
    };
    const token = typeof this.#token === "function" ? await this.#token() : this.#token;
    if (token !== undefined) headers.Authorization = `Bearer ${checkedToken(token)}`;
    if (call.body !== undefined) headers["Content-Type"] = "application/json";
    const init: RequestInit = { method: call.method, headers };
    if (call.body !== undefined) init.body = JSON.stringify(call.body);
    const url = `${this.#baseUrl}/${call.path}${query}`;
    const { status, headers: replyHeaders, text } = await this.#fetchText(url, init, call);
    return parseReply<T>(status, replyHeaders, text, call.ok);
  }

  async #fetchText(url: string, init: RequestInit, call: Call): Promise<RawReply> {
    const timeoutMs = this.#timeoutMs + (call.extraTimeoutMs ?? 0);
    const deadline = withTimeout(timeoutMs, call.signal);
    try {
      const response = await this.#fetch(url, { ...init, signal: deadline.signal });
      return { status: response.status, headers: response.headers, text: await response.text() };
    } catch (error) {
      throw deadline.reason() ?? error;
    } finally {
      deadline.clear();
    }
  }
}

function parseReply<T>(status: number, headers: Headers, text: string, ok: readonly number[]): T {
  if (status >= 400) throw apiError(status, headers, text);
  if (!ok.includes(status)) {
    throw unexpectedReply(status, headers, `status ${status} was not expected`);
  }
  try {
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === "object") return value as T;
  } catch {
    // reported below
  }
  throw unexpectedReply(status, headers, "the body is not a JSON object");
}

function apiError(status: number, headers: Headers, text: string): QueueApiError {
  const retryAfter = retryAfterS(headers.get("retry-after"));
  const contentType = (headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (contentType === "application/problem+json") {
    try {
      const problem: unknown = JSON.parse(text);
      if (isProblem(problem)) return new QueueApiError(problem, retryAfter);
    } catch {
      // not JSON: made up below
    }
  }
  return new QueueApiError(unexpectedProblem(status, headers, text.slice(0, 300)), retryAfter);
}

function unexpectedReply(status: number, headers: Headers | null, detail: string): QueueApiError {
  return new QueueApiError(unexpectedProblem(status, headers, detail));
}

function unexpectedProblem(status: number, headers: Headers | null, detail: string): ProblemFields {
  const requestId = headers?.get("x-request-id") ?? "";
  return { type: "about:blank", title: "Unexpected reply", status, detail, code: UNEXPECTED_REPLY, requestId };
}

function isProblem(value: unknown): value is ProblemFields {
  if (value === null || typeof value !== "object") return false;
  const fields = value as Record<string, unknown>;
  return (
    typeof fields.status === "number" &&
    typeof fields.code === "string" &&
    typeof fields.title === "string" &&
    typeof fields.detail === "string"
  );
}

/** Retry-After as seconds from now: delay-seconds or an HTTP-date; null when absent or unreadable. */
export function retryAfterS(value: string | null): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const moment = Date.parse(text);
  return Number.isNaN(moment) ? null : Math.max(0, (moment - Date.now()) / 1000);
}

function sameVersion(before: Job, after: Job): boolean {
  return JSON.stringify(before) === JSON.stringify(after);
}

function jobId(id: string): string {
  if (typeof id !== "string" || id === "") {
    throw new TypeError(`a job id is a non-empty string, not ${String(id)}`);
  }
  return id;
}

function checkedToken(token: string): string {
  if (typeof token !== "string" || token === "" || token.trim() !== token) {
    throw new TypeError("the token must be a non-empty string without surrounding spaces");
  }
  return token;
}

function checkWaitOptions(timeoutMs: number, pollIntervalMs: number): void {
  if (!(timeoutMs >= 0)) {
    throw new RangeError(`timeoutMs must be >= 0 (or Infinity), not ${timeoutMs}`);
  }
  if (!(pollIntervalMs > 0) || !Number.isFinite(pollIntervalMs)) {
    throw new RangeError(`pollIntervalMs must be milliseconds > 0, not ${pollIntervalMs}`);
  }
}

/** A signal that aborts after `timeoutMs` (with a TimeoutError) or when `outer` aborts (with
 * its reason); `reason()` says which, for the error to throw instead of fetch's own. */
function withTimeout(timeoutMs: number, outer: AbortSignal | undefined) {
  const controller = new AbortController();
  let cause: unknown = undefined;
  const abort = (reason: unknown) => {
    cause ??= reason;
    controller.abort(reason);
  };
  const onOuterAbort = () => abort(outer?.reason);
  if (outer?.aborted) abort(outer.reason);
  outer?.addEventListener("abort", onOuterAbort, { once: true });
  const timer = setTimeout(
    () => abort(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError")),
    timeoutMs,
  );
  return {
    signal: controller.signal,
    reason: () => cause,
    clear: () => {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onOuterAbort);
    },
  };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
