// enqueueMany needs the server side of batches (SPEC section 12, being built): until then the
// server answers 422 and this fails.
import assert from "node:assert/strict";
import { test } from "node:test";

import { userClient } from "./helpers.mjs";

test("enqueueMany creates every job in one request", async () => {
  const queue = userClient();

  const jobs = await queue.enqueueMany([
    { type: "image.generate", data: { n: 1 }, delayMs: 60_000 },
    { type: "image.upscale", data: { n: 2 }, priority: 0, delayMs: 60_000 },
  ]);

  assert.deepEqual(jobs.map((job) => job.type), ["image.generate", "image.upscale"]);
  assert.equal(new Set(jobs.map((job) => job.id)).size, 2);
  for (const job of jobs) assert.equal((await queue.status(job.id)).status, "delayed");
});
