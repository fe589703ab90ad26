/**
 * The users, posts and sign-in flow through the generated client against a live server:
 * API_URL and API_KEY (a key with every scope) from the environment. Exits non-zero on
 * the first failed check. Run by tests/test_typescript_client.py.
 */
import assert from "node:assert/strict";

import { createUserManagementClient, importUsers, type Cursor, type User } from "../src/index.js";

const baseUrl = process.env["API_URL"];
const apiKey = process.env["API_KEY"];
if (!baseUrl || !apiKey) {
  throw new Error("set API_URL and API_KEY");
}
const client = createUserManagementClient(baseUrl, apiKey);
const tag = Math.random().toString(36).slice(2, 8);

// Create, then the same name again: a 409 whose body is typed, naming the field.
const created = await client.POST("/users", {
  body: { username: `ada-${tag}`, email: `ada-${tag}@example.com` },
});
assert.equal(created.response.status, 201);
const ada: User = created.data!;
assert.equal(ada.username, `ada-${tag}`);
assert.ok(created.response.headers.get("Location")?.endsWith(`/users/${ada.id}`));

const again = await client.POST("/users", {
  body: { username: `ADA-${tag}`, email: `other-${tag}@example.com` },
});
assert.equal(again.response.status, 409);
assert.ok(again.error);
if (again.error.status === 409) {
  assert.equal(again.error.field, "username");
} else {
  assert.fail(`expected a 409 problem, got ${again.error.status}`);
}

// Read it back; an unknown id is a typed 404 problem.
const read = await client.GET("/users/{user_id}", { params: { path: { user_id: ada.id } } });
assert.deepEqual(read.data, ada);
const missing = await client.GET("/users/{user_id}", {
  params: { path: { user_id: 999_999_999 } },
});
assert.equal(missing.response.status, 404);
assert.equal(missing.error?.status, 404);
assert.equal(missing.error?.title, "Not Found");

// An update must name a member: {} does not type-check, and the server agrees.
// @ts-expect-error an empty update is no UserUpdate
const empty = await client.PATCH("/users/{user_id}", { params: { path: { user_id: ada.id } }, body: {} });
assert.equal(empty.response.status, 422);
if (empty.error?.status === 422) {
  assert.ok(empty.error.errors.length > 0);
} else {
  assert.fail("expected a 422 problem");
}
const renamed = await client.PATCH("/users/{user_id}", {
  params: { path: { user_id: ada.id } },
  body: { email: `ada.lovelace-${tag}@example.com` },
});
assert.equal(renamed.data?.email, `ada.lovelace-${tag}@example.com`);

// ETags: the one read before the change is stale now, so a write sending it is a 412.
const stale = read.response.headers.get("ETag")!;
const current = renamed.response.headers.get("ETag")!;
assert.notEqual(current, stale);
const refused = await client.PATCH("/users/{user_id}", {
  params: { path: { user_id: ada.id }, header: { "If-Match": stale } },
  body: { username: `lost-${tag}` },
});
assert.equal(refused.error?.status, 412);
const unchanged = await client.GET("/users/{user_id}", {
  params: { path: { user_id: ada.id }, header: { "If-None-Match": current } },
});
assert.equal(unchanged.response.status, 304);

// Posts: create two, list them a page at a time, passing next_cursor back as it came.
for (const title of ["First", "Second"]) {
  const post = await client.POST("/users/{user_id}/posts", {
    params: { path: { user_id: ada.id } },
    body: { title, body: `${title} post.` },
  });
  assert.equal(post.response.status, 201);
}
const titles: string[] = [];
let cursor: Cursor | null = null;
do {
  const query: { limit: number; cursor?: Cursor } = cursor === null ? { limit: 1 } : { limit: 1, cursor };
  const page = await client.GET("/users/{user_id}/posts", {
    params: { path: { user_id: ada.id }, query },
  });
  assert.ok(page.data, `listing failed: ${page.response.status}`);
  titles.push(...page.data.items.map((post) => post.title));
  cursor = page.data.next_cursor;
} while (cursor !== null);
assert.deepEqual(titles, ["First", "Second"]);

// Import an NDJSON file as it is; the same file again is a typed 409 naming its lines.
const file = [`{"username": "bob-${tag}", "email": "bob-${tag}@example.com"}`, `{"username": "cy-${tag}", "email": "cy-${tag}@example.com"}`].join("\n") + "\n";
const imported = await importUsers(client, file, "application/x-ndjson");
assert.equal(imported.response.status, 200, JSON.stringify(imported.error));
assert.deepEqual(imported.data, { created: 2, skipped: 0, errors: [] });
const twice = await importUsers(client, new TextEncoder().encode(file), "application/x-ndjson");
assert.equal(twice.response.status, 409);
if (twice.error?.status === 409 && "created" in twice.error) {
  assert.equal(twice.error.created, 0);
  assert.deepEqual(twice.error.errors.map((e) => e.line), [1, 2]);
} else {
  assert.fail("expected an import problem");
}
const skipped = await importUsers(client, new Blob([file]), "application/x-ndjson", { on_conflict: "skip" });
assert.deepEqual(skipped.data?.created, 0);
assert.deepEqual(skipped.data?.skipped, 2);

// Accounts: this key (users:admin) gives ada a password; ada signs in, reads /me with the
// access token, refreshes once; the spent refresh token used again ends the session.
const password = `a long passphrase ${tag}`;
const set = await client.PUT("/users/{user_id}/password", {
  params: { path: { user_id: ada.id } },
  body: { new_password: password },
});
assert.equal(set.response.status, 204);
const weak = await client.PUT("/users/{user_id}/password", {
  params: { path: { user_id: ada.id } },
  body: { new_password: "short" },
});
assert.equal(weak.error?.status, 422);
const signedIn = await client.POST("/auth/sessions", {
  body: { username: ada.username, password },
});
assert.equal(signedIn.response.status, 201);
const tokens = signedIn.data!;
assert.equal(tokens.token_type, "Bearer");
assert.ok(tokens.access_token.startsWith("uma_"));
const asAda = createUserManagementClient(baseUrl, tokens.access_token);
const me = await asAda.GET("/me");
assert.equal(me.data?.id, ada.id);
const refreshed = await client.POST("/auth/sessions/refresh", {
  body: { refresh_token: tokens.refresh_token },
});
assert.equal(refreshed.response.status, 200);
assert.equal(refreshed.data?.session_id, tokens.session_id);
const asAdaAgain = createUserManagementClient(baseUrl, refreshed.data!.access_token);
assert.equal((await asAdaAgain.GET("/me")).data?.username, ada.username);
const reused = await client.POST("/auth/sessions/refresh", {
  body: { refresh_token: tokens.refresh_token },
});
assert.equal(reused.error?.status, 401);
// The whole session ended: the fresh refresh token is refused too. (Not the fresh access
// token: another server process may answer from its cache until the revocation reaches it.)
const afterReuse = await client.POST("/auth/sessions/refresh", {
  body: { refresh_token: refreshed.data!.refresh_token },
});
assert.equal(afterReuse.error?.status, 401);
const wrong = await client.POST("/auth/sessions", {
  body: { username: ada.username, password: "not the password at all" },
});
assert.equal(wrong.error?.status, 401);

// Delete: a 204, then the user is a 404.
const deleted = await client.DELETE("/users/{user_id}", { params: { path: { user_id: ada.id } } });
assert.equal(deleted.response.status, 204);
const gone = await client.GET("/users/{user_id}", { params: { path: { user_id: ada.id } } });
assert.equal(gone.error?.status, 404);

console.log(`typescript client flow passed (${tag})`);
