// What the tests share: the dev server they run against (its URL, JWT secret and service key
// come from the environment tests/clients/test_js_client.py sets), HS256 user tokens, clients.
import { createHmac, randomUUID } from "node:crypto";

import { QueueClient } from "../build/src/index.js";

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/clients/test_js_client.py`);
  return value;
}

export const baseUrl = () => required("QUEUE_BASE_URL");
export const serviceKey = () => required("QUEUE_SERVICE_KEY");
export const unreachableUrl = () => required("QUEUE_UNREACHABLE_URL");

const base64url = (value) => Buffer.from(value).toString("base64url");

/** An HS256 JWT for `sub`, signed with the dev server's secret. */
export function userToken(sub) {
  const now = Math.floor(Date.now() / 1000);
  const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = base64url(JSON.stringify({ sub, iat: now, exp: now + 3600 }));
  const signature = createHmac("sha256", required("QUEUE_JWT_SECRET"))
    .update(`${header}.${payload}`)
    .digest("base64url");
  return `${header}.${payload}.${signature}`;
}

/** A user no other test uses (its own jobs and rate-limit budget). */
export const newUserId = () => `js-${randomUUID().slice(0, 12)}`;

export function userClient(options = {}) {
  return new QueueClient({ baseUrl: baseUrl(), token: userToken(newUserId()), ...options });
}

export function serviceClient(options = {}) {
  return new QueueClient({ baseUrl: baseUrl(), token: serviceKey(), ...options });
}

/** `fetch` that keeps every URL it was asked for. */
export function recordingFetch() {
  const urls = [];
  const recorder = (url, init) => {
    urls.push(new URL(String(url)));
    return fetch(url, init);
  };
  return { fetch: recorder, urls };
}

/** Poll `condition` until it is truthy (its value) or fail after `timeoutMs`. */
export async function eventually(condition, what, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
