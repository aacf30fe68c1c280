import { generateKeyPairSync, type KeyObject } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { io, type Socket } from "socket.io-client";
import { scrapeAdmin, total } from "./metrics";
import type { SockfleetHost } from "./sockfleet";
import { nextEvent } from "./wait";

export const SECRET = "a-test-secret-of-at-least-thirty-two-characters";
export const ISSUER = "https://issuer.test";
export const AUDIENCE = "sockfleet-tests";
/** bcrypt hash (cost 4) of "s3cret", as in admin-ui.test.ts. */
export const ADMIN_UI_HASH = "$2a$04$LY/fBb5yiqxQ8vR8DPSeC..2nRBEsooy.gZ0Oboxe2UylKvEWXabK";

/** The answer of the auth-app fixture's "whoami-user". */
export type UserReply = { user?: Record<string, unknown>; userSeenByAppMiddleware?: boolean };

/** sockfleet_limit_hits_total{limit} of a host started with --admin-port 0. */
export async function limitHits(host: SockfleetHost, limit: string): Promise<number> {
  return total(await scrapeAdmin(host), "sockfleet_limit_hits_total", { limit });
}

type Jose = typeof import("jose", { with: { "resolution-mode": "import" } });
let jose: Jose | undefined;

/** jose is ESM-only; this CommonJS test build loads it with import(). */
async function loadJose(): Promise<Jose> {
  jose ??= await import("jose");
  return jose;
}

export interface MintOptions {
  alg?: string;
  key: KeyObject | Uint8Array;
  issuer?: string;
  audience?: string;
  /** Seconds since the epoch, or a jose time span ("5m"); null leaves `exp` out. */
  expires?: number | string | null;
}

/** Signs a JWT with jose's SignJWT, as a token service would. */
export async function mint(claims: Record<string, unknown>, options: MintOptions): Promise<string> {
  const { SignJWT } = await loadJose();
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: options.alg ?? "HS256" }).setIssuedAt();
  if (options.issuer !== undefined) jwt = jwt.setIssuer(options.issuer);
  if (options.audience !== undefined) jwt = jwt.setAudience(options.audience);
  const expires = options.expires === undefined ? "5m" : options.expires;
  if (expires !== null) jwt = jwt.setExpirationTime(expires);
  return jwt.sign(options.key);
}

export function secretKey(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** A key pair whose public half is written as PEM to a fresh temporary directory. */
export interface KeyFiles {
  dir: string;
  publicKeyFile: string;
  privateKey: KeyObject;
  privateKeyPem: string;
  remove(): void;
}

export function keyFiles(kind: "rsa" | "ec", options: { modulusLength?: number; namedCurve?: string } = {}): KeyFiles {
  const pair =
    kind === "rsa"
      ? generateKeyPairSync("rsa", { modulusLength: options.modulusLength ?? 2048 })
      : generateKeyPairSync("ec", { namedCurve: options.namedCurve ?? "P-256" });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sockfleet-jwt-"));
  const publicKeyFile = path.join(dir, "public.pem");
  fs.writeFileSync(publicKeyFile, pair.publicKey.export({ type: "spki", format: "pem" }));
  const privateKeyPem = pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  return { dir, publicKeyFile, privateKey: pair.privateKey, privateKeyPem, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export type Transports = Array<"polling" | "websocket">;
export const TRANSPORTS: Array<{ name: string; transports: Transports }> = [
  { name: "polling", transports: ["polling"] },
  { name: "WebSocket only", transports: ["websocket"] },
];

/** Connects once without reconnecting and returns the connect_error; rejects if the socket connects. */
export async function connectError(url: string, auth: Record<string, unknown>, transports: Transports, nsp = "/"): Promise<Error & { data?: { reason?: string } }> {
  const socket: Socket = io(url + nsp, { forceNew: true, reconnection: false, transports, auth });
  try {
    const [err] = await Promise.race([
      nextEvent<[Error & { data?: { reason?: string } }]>(socket, "connect_error", 10_000),
      nextEvent(socket, "connect", 10_000).then(() => {
        throw new Error(`connected to ${nsp} with auth ${JSON.stringify(auth)}, expected a refusal`);
      }),
    ]);
    return err;
  } finally {
    socket.disconnect();
  }
}
