// MedLedger signed member requests (docs/request-signature.md), for Node 20+ with ethers v6.
//
// A second implementation, kept apart from the Python one on purpose: it is written from the
// document, is tested against the same vectors (docs/request-signature-vectors.json) and makes real
// signed calls to a running node in the test suite. Integrators may copy it.
//
//   import { Wallet } from "ethers";
//   import { signedFetch } from "./medledger-signer.mjs";
//   const call = signedFetch(new Wallet(key), { chainId: 1337, audience: "0x…node account…" });
//   const response = await call("http://node:8601/v1/consortium/members");

import { getBytes, hashMessage, hexlify, randomBytes, sha256, Signature } from "ethers";

export const SCHEME = "MedLedger-Request-v1";
const UNRESERVED = /[A-Za-z0-9_.\-~]/;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function percentDecode(text) {
  const replaced = text.replaceAll("+", " ");
  const bytes = [];
  for (let i = 0; i < replaced.length; ) {
    const pair = replaced.slice(i + 1, i + 3);
    if (replaced[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(pair)) {
      bytes.push(parseInt(pair, 16));
      i += 3;
    } else {
      bytes.push(replaced.charCodeAt(i)); // the query is ASCII (section 2, step 6.1)
      i += 1;
    }
  }
  return strictUtf8.decode(new Uint8Array(bytes));
}

function percentEncode(text) {
  let out = "";
  for (const byte of utf8.encode(text)) {
    const char = String.fromCharCode(byte);
    if (byte < 0x80 && UNRESERVED.test(char)) out += char;
    else if (byte === 0x20) out += "+";
    else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

function compareCodePoints(a, b) {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** The canonical query (section 2, item 6) of a raw query string (without the "?"). */
export function canonicalQuery(query) {
  if (/[^\x00-\x7f]/.test(query)) throw new Error("the query string must be ASCII");
  const pairs = query
    .split("&")
    .filter((piece) => piece !== "")
    .map((piece) => {
      const at = piece.indexOf("=");
      return at < 0 ? [percentDecode(piece), ""] : [percentDecode(piece.slice(0, at)), percentDecode(piece.slice(at + 1))];
    });
  pairs.sort((a, b) => compareCodePoints(a[0], b[0]) || compareCodePoints(a[1], b[1]));
  return pairs.map(([name, value]) => `${percentEncode(name)}=${percentEncode(value)}`).join("&");
}

/** Lowercase hex SHA-256 of the body bytes (Uint8Array or string; none: the empty string). */
export function contentSha256(body) {
  const bytes = body === undefined || body === null ? new Uint8Array() : typeof body === "string" ? utf8.encode(body) : body;
  return sha256(bytes).slice(2);
}

/** The nine-line signature base (section 2). */
export function signatureBase({ chainId, audience, method, path, query, contentSha256: digest, timestamp, nonce }) {
  return [SCHEME, String(chainId), audience.toLowerCase(), method.toUpperCase(), path, canonicalQuery(query ?? ""),
    digest, String(timestamp), nonce].join("\n");
}

/** The EIP-191 digest that is signed (section 3), as 0x-hex. */
export function digestOf(base) {
  return hashMessage(base);
}

/** The five headers for one request. `url` may be absolute or a path with a query. */
export async function signRequest(wallet, { chainId, audience, method, url, body, timestamp, nonce }) {
  const parsed = new URL(url, "http://placeholder.invalid");
  if (parsed.pathname.includes("%")) throw new Error("MedLedger paths are never percent-encoded");
  const ts = String(timestamp ?? Math.floor(Date.now() / 1000));
  const nonceHex = nonce ?? hexlify(randomBytes(16)).slice(2);
  const digest = contentSha256(body);
  const base = signatureBase({ chainId, audience, method, path: parsed.pathname, query: parsed.search.slice(1),
    contentSha256: digest, timestamp: ts, nonce: nonceHex });
  const signature = Signature.from(await wallet.signMessage(base)); // ethers always gives low s and v 27/28
  return {
    "X-MedLedger-Signer": wallet.address,
    "X-MedLedger-Timestamp": ts,
    "X-MedLedger-Nonce": nonceHex,
    "X-MedLedger-Content-SHA256": digest,
    "X-MedLedger-Signature": signature.serialized,
  };
}

/** A fetch that signs every request as the member `wallet` for the node `audience` on chain `chainId`. */
export function signedFetch(wallet, { chainId, audience }) {
  return async (url, init = {}) => {
    const body = init.body === undefined ? undefined : typeof init.body === "string" ? init.body : new Uint8Array(init.body);
    const headers = await signRequest(wallet, { chainId, audience, method: init.method ?? "GET", url, body });
    return fetch(url, { ...init, headers: { ...(init.headers ?? {}), ...headers } });
  };
}

/** The signature's bytes as the node checks them: used by the vector runner. */
export function signatureParts(hex) {
  const bytes = getBytes(hex.startsWith("0x") ? hex : "0x" + hex);
  return { r: hexlify(bytes.slice(0, 32)), s: hexlify(bytes.slice(32, 64)), v: bytes[64] };
}
