/**
 * The typed client of the user-management API: the types are generated from the served
 * OpenAPI document (src/schema.ts, by scripts/generate_client.py), the calls are
 * openapi-fetch's. The only code here is the credential and the file upload.
 */
import createClient, { type Client, type ClientOptions } from "openapi-fetch";

import type { components, operations, paths, webhooks } from "./schema.js";

export type { components, operations, paths, webhooks } from "./schema.js";

export type Schemas = components["schemas"];
export type User = Schemas["UserRead"];
export type Post = Schemas["PostRead"];
export type Cursor = Schemas["Cursor"];
export type UserManagementClient = Client<paths>;
/** The media types an import takes. */
export type ImportFormat = keyof operations["importUsers"]["requestBody"]["content"];
export type ImportQuery = NonNullable<operations["importUsers"]["parameters"]["query"]>;
/** A change event type a webhook delivers (the document's `webhooks` section). */
export type WebhookEventType = keyof webhooks;
/**
 * The body of a webhook delivery of the given types (all by default): a union that narrows
 * on `type`. Verify the signature before trusting it (a Standard Webhooks library).
 */
export type WebhookPayload<T extends WebhookEventType = WebhookEventType> = {
  [K in T]: webhooks[K]["post"]["requestBody"]["content"]["application/json"];
}[T];

/**
 * A client for the API at `baseUrl` (no trailing slash) that sends `token` on every call:
 * an API key (umk_...) or a signed-in user's access token (uma_...). Without one it sends
 * no credential: enough to sign in (POST /auth/sessions) and to refresh.
 */
export function createUserManagementClient(
  baseUrl: string,
  token?: string,
  options: Omit<ClientOptions, "baseUrl" | "headers"> = {},
): UserManagementClient {
  return createClient<paths>({
    ...options,
    baseUrl,
    ...(token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } }),
  });
}

/** POST /users/import: send the file's bytes as they are, never JSON-encoded. */
export function importUsers(
  client: UserManagementClient,
  file: string | Uint8Array | Blob,
  format: ImportFormat,
  query: ImportQuery = {},
) {
  return client.POST("/users/import", {
    params: { query },
    // The document says "binary", which openapi-typescript types as string; any bytes go.
    body: file as string,
    // openapi-fetch JSON-encodes bodies by default: a file would arrive as one JSON string.
    bodySerializer: (body: unknown) => body as BodyInit,
    headers: { "Content-Type": format },
  });
}
