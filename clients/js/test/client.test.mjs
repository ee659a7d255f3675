// The TypeScript client (compiled) against the dev server: every call, the long-poll, and the
// errors, each a QueueApiError with the problem's fields.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test } from "node:test";

import { QueueApiError, QueueClient, WaitTimeoutError } from "../build/src/index.js";
import {
  baseUrl,
  eventually,
  newUserId,
  recordingFetch,
  serviceClient,
  unreachableUrl,
  userClient,
  userToken,
} from "./helpers.mjs";

const WAIT_MS = 60_000;

async function rejection(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

test("enqueue answers the new job and status reads it back", async () => {
  const queue = userClient();

  const job = await queue.enqueue("image.generate", { prompt: "a red fox" }, { priority: 2, delayMs: 60_000 });
  const again = await queue.status(job.id);

  assert.equal(job.type, "image.generate");
  assert.equal(job.status, "delayed");
  assert.equal(job.priority, 2);
  assert.ok(job.runAt >= job.createdAt + 60_000);
  assert.deepEqual(again, job);
});

test("wait follows the job to completed, reporting each new version once", async () => {
  const queue = userClient();
  const seen = [];
  const job = await queue.enqueue("image.generate", { steps: 3, stepMs: 300 });

  const final = await queue.wait(job.id, { timeoutMs: WAIT_MS, onUpdate: (update) => seen.push(update) });

  assert.equal(final.status, "completed");
  assert.deepEqual(final.result, { type: "image.generate", attempt: 1, echo: { steps: 3, stepMs: 300 } });
  assert.equal(final.progress.percent, 100);
  assert.deepEqual(seen.at(-1), final);
  const versions = seen.map((update) => JSON.stringify(update));
  assert.equal(new Set(versions).size, versions.length);
  const updated = seen.map((update) => update.updatedAt);
  assert.deepEqual(updated, [...updated].sort((a, b) => a - b));
});

test("watch reports progress until the job is final and resolves with it", async () => {
  const queue = userClient();
  const statuses = [];
  const job = await queue.enqueue("image.generate", { steps: 2, stepMs: 200 });

  const final = await queue.watch(job.id, (update) => statuses.push(update.status));

  assert.equal(final.status, "completed");
  assert.equal(statuses.at(-1), "completed");
});

test("watch stops when its signal aborts, with the signal's reason", async () => {
  const queue = userClient();
  const job = await queue.enqueue("image.generate", {}, { delayMs: 600_000 });
  const controller = new AbortController();
  const updates = [];

  const watching = queue.watch(job.id, (update) => updates.push(update), { signal: controller.signal });
  setTimeout(() => controller.abort(), 1_000);
  const error = await rejection(watching);

  assert.equal(error.name, "AbortError");
  assert.equal(updates.length, 1);
  assert.equal(updates[0].status, "delayed");
});

test("an already aborted signal stops a call before it is sent", async () => {
  const { fetch, urls } = recordingFetch();
  const queue = userClient({ fetch });
  const controller = new AbortController();
  controller.abort();

  const error = await rejection(queue.status("01M8T163RW8126239JE0VA0RQ7", { signal: controller.signal }));

  assert.equal(error.name, "AbortError");
  assert.ok(urls.length <= 1); // fetch itself refuses an aborted signal without sending
});

test("wait gives up after its timeout with the job as last seen", async () => {
  const queue = userClient();
  const job = await queue.enqueue("image.generate", {}, { delayMs: 600_000 });

  const error = await rejection(queue.wait(job.id, { timeoutMs: 1_000 }));

  assert.ok(error instanceof WaitTimeoutError);
  assert.equal(error.job.id, job.id);
  assert.equal(error.job.status, "delayed");
});

test("wait long-polls status with waitMs and after the last version seen", async () => {
  const { fetch, urls } = recordingFetch();
  const queue = userClient({ fetch });
  const job = await queue.enqueue("image.generate", {}, { delayMs: 600_000 });

  await rejection(queue.wait(job.id, { timeoutMs: 1_500 }));

  const [, first, ...polls] = urls.map((url) => Object.fromEntries(url.searchParams));
  assert.deepEqual(first, { id: job.id });
  assert.ok(polls.length > 0);
  for (const params of polls) {
    assert.deepEqual(Object.keys(params).sort(), ["after", "id", "waitMs"]);
    assert.ok(Number(params.waitMs) > 0 && Number(params.waitMs) <= 1_500);
    assert.equal(params.after, String(job.updatedAt));
  }
});

test("a wait on an unchanging job is held by the server, not a poll loop", async () => {
  const { fetch, urls } = recordingFetch();
  const queue = userClient({ fetch });
  const job = await queue.enqueue("image.generate", {}, { delayMs: 600_000 });

  await rejection(queue.wait(job.id, { timeoutMs: 3_000, pollIntervalMs: 500 }));

  assert.ok(urls.length - 1 <= 3, urls.join("\n"));
});

test("an idempotency key replays the job it created; reused for another job it is a 422", async () => {
  const queue = userClient();

  const first = await queue.enqueue("report.build", { month: 5 }, { idempotencyKey: "order-42" });
  const replay = await queue.enqueue("report.build", { month: 5 }, { idempotencyKey: "order-42" });
  const error = await rejection(queue.enqueue("report.build", { month: 6 }, { idempotencyKey: "order-42" }));

  assert.equal(replay.id, first.id);
  assert.ok(error instanceof QueueApiError);
  assert.equal(error.status, 422);
  assert.equal(error.code, "idempotency_key_reused");
});

test("a refused body rejects with one QueueApiError naming every field", async () => {
  const error = await rejection(userClient().enqueue("Not A Type", {}, { priority: 42 }));

  assert.ok(error instanceof QueueApiError);
  assert.equal(error.name, "QueueApiError");
  assert.equal(error.status, 422);
  assert.equal(error.code, "validation_failed");
  assert.equal(error.title, "Request failed validation");
  assert.deepEqual(error.errors.map((field) => field.field).sort(), ["priority", "type"]);
  assert.ok(error.requestId);
  assert.equal(error.rateLimited, false);
  assert.equal(error.unavailable, false);
});

test("someone else's job is not found", async () => {
  const job = await userClient().enqueue("image.generate", {}, { delayMs: 60_000 });

  const error = await rejection(userClient().status(job.id));

  assert.equal(error.status, 404);
  assert.equal(error.code, "not_found");
});

test("bad credentials are a 401", async () => {
  const queue = new QueueClient({ baseUrl: baseUrl(), token: "nope" });

  const error = await rejection(queue.status("01M8T163RW8126239JE0VA0RQ7"));

  assert.equal(error.status, 401);
  assert.equal(error.code, "unauthorized");
});

test("a token function is asked for the token before every request", async () => {
  const token = userToken(newUserId());
  let asked = 0;
  const queue = new QueueClient({ baseUrl: baseUrl(), token: async () => (asked += 1, token) });

  const job = await queue.enqueue("image.generate", {}, { delayMs: 60_000 });
  await queue.status(job.id);

  assert.equal(asked, 2);
});

test("cancel a delayed job answers it cancelled, and again (idempotent)", async () => {
  const queue = userClient();
  const job = await queue.enqueue("image.generate", {}, { delayMs: 60_000 });

  const cancelled = await queue.cancel(job.id);
  const again = await queue.cancel(job.id);

  assert.equal(cancelled.status, "cancelled");
  assert.equal(again.status, "cancelled");
});

test("cancel a running job requests it, and the job ends cancelled", async () => {
  const queue = userClient();
  const job = await queue.enqueue("image.generate", { steps: 20, stepMs: 500 });
  await eventually(async () => (await queue.status(job.id)).status === "processing", "the job to start");

  const requested = await queue.cancel(job.id);
  const final = await queue.wait(job.id, { timeoutMs: 30_000 }); // it would complete in 10 s

  assert.equal(requested.status, "processing");
  assert.equal(requested.cancelRequested, true);
  assert.equal(final.status, "cancelled");
});

test("cancel a completed job is a 409 conflict", async () => {
  const queue = userClient();
  const job = await queue.enqueue("image.generate", { steps: 1, stepMs: 0 });
  await queue.wait(job.id, { timeoutMs: WAIT_MS });

  const error = await rejection(queue.cancel(job.id));

  assert.equal(error.status, 409);
  assert.equal(error.code, "conflict");
});

test("checkRateLimit reads, then consumes, a policy until it denies", async () => {
  const backend = serviceClient();
  const identifier = newUserId();

  const read = await backend.checkRateLimit("tiny", { identifier, consume: false });
  const first = await backend.checkRateLimit("tiny", { identifier });
  const second = await backend.checkRateLimit("tiny", { identifier, cost: 1 });
  const denied = await backend.checkRateLimit("tiny", { identifier });

  assert.deepEqual([read.allowed, read.limit, read.remaining, read.policy], [true, 2, 2, "tiny"]);
  assert.deepEqual([first.remaining, second.remaining], [1, 0]);
  assert.equal(denied.allowed, false);
  assert.ok(denied.retryAfterS > 0);
  assert.equal(denied.reason, "limit_exceeded");
});

test("a denied enqueue rejects as rate limited, with retryAfterS", async () => {
  const userId = newUserId();
  await serviceClient().checkRateLimit("user", { identifier: userId, cost: 1000 });
  const queue = new QueueClient({ baseUrl: baseUrl(), token: userToken(userId) });

  const error = await rejection(queue.enqueue("image.generate", {}));

  assert.ok(error instanceof QueueApiError);
  assert.equal(error.status, 429);
  assert.equal(error.code, "rate_limited");
  assert.equal(error.rateLimited, true);
  assert.ok(error.retryAfterS > 0);
});

test("stats shows the queue to a service key only", async () => {
  const user = userClient();
  await user.enqueue("image.generate", {}, { delayMs: 60_000 });

  const stats = await serviceClient().stats();
  const error = await rejection(user.stats());

  assert.ok(stats.delayed >= 1);
  assert.ok(stats.workers.length >= 1);
  assert.equal(error.status, 403);
});

test("an unreachable Redis rejects as unavailable, with retryAfterS", async () => {
  const queue = new QueueClient({ baseUrl: unreachableUrl(), token: userToken(newUserId()) });

  const error = await rejection(queue.enqueue("image.generate", {}));

  assert.ok(error instanceof QueueApiError);
  assert.equal(error.status, 503);
  assert.equal(error.unavailable, true);
  assert.ok(["redis_unavailable", "redis_timeout"].includes(error.code));
  assert.ok(error.retryAfterS >= 1);
});

test("a server that never answers times out after timeoutMs", async (t) => {
  const silent = createServer(() => {}); // accepts, never answers
  await new Promise((resolve) => silent.listen(0, "127.0.0.1", resolve));
  t.after(() => silent.close());
  const sockets = [];
  silent.on("connection", (socket) => sockets.push(socket));
  t.after(() => sockets.forEach((socket) => socket.destroy()));
  const { port } = silent.address();
  const queue = new QueueClient({ baseUrl: `http://127.0.0.1:${port}/api`, token: "t", timeoutMs: 300 });

  const error = await rejection(queue.stats());

  assert.equal(error.name, "TimeoutError");
});

test("a bad baseUrl or timeout is refused at once", () => {
  assert.throws(() => new QueueClient({ baseUrl: "" }), TypeError);
  assert.throws(() => new QueueClient({ baseUrl: "/api", timeoutMs: 0 }), RangeError);
});
