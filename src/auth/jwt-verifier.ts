import type { JWTPayload } from "jose" with { "resolution-mode": "import" };
import { jwtKey, type JwtKey, type JwtKeySettings } from "./jwt-key";

/** Seconds of clock skew allowed between the token issuer and this host, for `exp`, `nbf` and `iat`. */
export const JWT_CLOCK_TOLERANCE_S = 5;
/** Longer tokens are refused unread: a handshake is no place for a megabyte to base64-decode. */
export const MAX_TOKEN_LENGTH = 16_384;

/** Why a token was refused; the connect_error's `data.reason` and the log line carry it. */
export type JwtRefusal =
  | "missing"
  | "malformed"
  | "bad signature"
  | "wrong algorithm"
  | "expired"
  | "no expiry"
  | "not yet valid"
  | "wrong issuer"
  | "wrong audience"
  | "invalid claims";

export type JwtOutcome = { ok: true; claims: JWTPayload } | { ok: false; reason: JwtRefusal; detail?: string };

export interface JwtSettings extends JwtKeySettings {
  readonly authJwtIssuer?: string;
  readonly authJwtAudience?: string;
}

type Jose = typeof import("jose", { with: { "resolution-mode": "import" } });

/** jose's error codes and the claim it names, mapped to the refusal a log reader understands. */
function refusal(err: unknown): { reason: JwtRefusal; detail?: string } {
  const { code, claim, reason, message } = (err ?? {}) as { code?: string; claim?: string; reason?: string; message?: string };
  switch (code) {
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return { reason: "bad signature" };
    case "ERR_JWT_EXPIRED":
      return { reason: "expired" };
    case "ERR_JOSE_ALG_NOT_ALLOWED":
    case "ERR_JOSE_NOT_SUPPORTED":
      return { reason: "wrong algorithm", detail: message };
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
      return { reason: "malformed", detail: message };
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      if (claim === "iss") return { reason: "wrong issuer" };
      if (claim === "aud") return { reason: "wrong audience" };
      if (claim === "nbf") return { reason: "not yet valid" };
      if (claim === "exp" && reason === "missing") return { reason: "no expiry" };
      return { reason: "invalid claims", detail: message };
    default:
      return { reason: "malformed", detail: message ?? String(err) };
  }
}

/**
 * Verifies the JWTs clients present in the handshake, with jose: the signature with the one
 * algorithm the configured key allows, `exp` (required), `nbf`, and `iss`/`aud` when configured.
 */
export class JwtVerifier {
  private constructor(
    private readonly jose: Jose,
    private readonly key: JwtKey,
    private readonly settings: JwtSettings,
  ) {}

  /**
   * Loads jose (ESM-only, hence import() from this CommonJS build) and the key, once per process.
   * Undefined when neither a secret nor a public key is configured: authentication is off.
   */
  static async create(settings: JwtSettings): Promise<JwtVerifier | undefined> {
    let key: JwtKey | undefined;
    try {
      key = jwtKey(settings);
    } catch (err) {
      // The primary checked the file at start; it may have changed before this worker started.
      throw new Error(`invalid setting authJwtPublicKey: ${(err as Error).message}`, { cause: err });
    }
    if (!key) return undefined;
    let jose: Jose;
    try {
      jose = await import("jose");
    } catch (err) {
      throw new Error(`JWT authentication needs the jose package: ${(err as Error).message}`, { cause: err });
    }
    return new JwtVerifier(jose, key, settings);
  }

  get algorithm(): string {
    return this.key.algorithm;
  }

  async verify(token: unknown): Promise<JwtOutcome> {
    if (token === undefined || token === null || token === "") return { ok: false, reason: "missing" };
    if (typeof token !== "string") return { ok: false, reason: "malformed", detail: `token is a ${typeof token}, not a string` };
    if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: "malformed", detail: `token longer than ${MAX_TOKEN_LENGTH} characters` };
    try {
      const { payload } = await this.jose.jwtVerify(token, this.key.key, {
        algorithms: [this.key.algorithm],
        clockTolerance: JWT_CLOCK_TOLERANCE_S,
        requiredClaims: ["exp"],
        issuer: this.settings.authJwtIssuer,
        audience: this.settings.authJwtAudience,
      });
      return { ok: true, claims: payload };
    } catch (err) {
      return { ok: false, ...refusal(err) };
    }
  }
}
