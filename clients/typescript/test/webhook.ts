/**
 * A typed webhook handler, its types generated from the document's `webhooks` section:
 * reads one delivery's body from the PAYLOAD variable and prints what it says. Run by
 * tests/test_typescript_client.py with a real payload; `tsc --strict` checks the types.
 */
import assert from "node:assert/strict";

import type { WebhookPayload } from "../src/index.js";

function describe(payload: WebhookPayload): string {
  const { actor, resource } = payload.data;
  switch (payload.type) {
    case "webhook.created":
    case "webhook.updated": {
      // Narrowed: only these two types reach here.
      const kind: "webhook.created" | "webhook.updated" = payload.type;
      return `${kind} ${resource.type} ${resource.id ?? "-"} by ${actor.kind}`;
    }
    case "users.imported":
      return `imported by ${actor.label ?? actor.kind}`;
    // @ts-expect-error no such event type: the generated union says so
    case "user.exploded":
      return "never";
    default:
      return `${payload.type} at ${payload.timestamp}`;
  }
}

function created(payload: WebhookPayload<"user.created">): string | null {
  // One type's payload: its type is that literal.
  const kind: "user.created" = payload.type;
  return `${kind}:${payload.data.resource.id}`;
}

const body = process.env["PAYLOAD"];
if (!body) {
  throw new Error("set PAYLOAD to a delivery's body");
}
const payload = JSON.parse(body) as WebhookPayload;
assert.equal(typeof payload.data.id, "number");
assert.equal(payload.timestamp, payload.data.occurred_at);
if (payload.type === "user.created") {
  console.log(created(payload));
}
console.log(describe(payload));
