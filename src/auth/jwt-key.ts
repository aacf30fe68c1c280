import { createPublicKey, type KeyObject } from "node:crypto";
import fs from "node:fs";

/** The signature algorithms sockfleet accepts, one per kind of key. */
export type JwtAlgorithm = "HS256" | "RS256" | "ES256";

/** What verifies client JWTs: the key and the one algorithm it may be used with. */
export interface JwtKey {
  readonly key: KeyObject | Uint8Array;
  readonly algorithm: JwtAlgorithm;
}

/** The JWT settings of the config (kept structural so this module does not depend on the schema). */
export interface JwtKeySettings {
  readonly authJwtSecret?: string;
  readonly authJwtPublicKey?: string;
}

/**
 * Reads the public key of `authJwtPublicKey` and picks its algorithm from the key itself (RSA:
 * RS256, EC P-256: ES256), so a token can never choose a weaker or confused algorithm (the
 * classic "alg: HS256 signed with the public key" attack). Throws an Error saying what is wrong
 * with the file; callers add the setting's name.
 */
export function readPublicKey(file: string): JwtKey {
  const pem = fs.readFileSync(file, "utf8");
  // createPublicKey would happily derive the public half of a private key: refuse it, a private
  // key has no business on a server that only verifies.
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) throw new Error(`${file} holds a private key; give the public key (openssl pkey -pubout)`);
  if (!/-----BEGIN (PUBLIC KEY|RSA PUBLIC KEY|CERTIFICATE)-----/.test(pem)) throw new Error(`${file} is not a PEM public key (expected -----BEGIN PUBLIC KEY-----)`);
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new Error(`${file} is not a valid PEM public key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType === "rsa") {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new Error(`${file} is a ${bits}-bit RSA key; RS256 needs at least 2048 bits`);
    return { key, algorithm: "RS256" };
  }
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return { key, algorithm: "ES256" };
  const kind = key.asymmetricKeyType === "ec" ? `EC ${key.asymmetricKeyDetails?.namedCurve}` : key.asymmetricKeyType;
  throw new Error(`${file} is a ${kind} key; supported are RSA (RS256) and EC P-256 (ES256)`);
}

/** The verification key of the settings, or undefined when authentication is off. */
export function jwtKey(settings: JwtKeySettings): JwtKey | undefined {
  if (settings.authJwtSecret !== undefined) return { key: new TextEncoder().encode(settings.authJwtSecret), algorithm: "HS256" };
  if (settings.authJwtPublicKey !== undefined) return readPublicKey(settings.authJwtPublicKey);
  return undefined;
}
