// Runs the request-signature vectors against medledger-signer.mjs; prints one line per case, exits 1 on any failure.
//   node clients/js/check-vectors.mjs docs/request-signature-vectors.json
import { readFileSync } from "node:fs";
import { Wallet } from "ethers";
import { canonicalQuery, contentSha256, digestOf, signatureBase, signRequest } from "./medledger-signer.mjs";

const vectors = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failures = 0;
for (const v of vectors.valid) {
  const url = new URL(v.url);
  const body = Buffer.from(v.body_hex, "hex");
  const wallet = new Wallet(v.private_key);
  const checks = {
    canonical_query: canonicalQuery(url.search.slice(1)),
    content_sha256: contentSha256(new Uint8Array(body)),
  };
  checks.signature_base = signatureBase({ chainId: v.chain_id, audience: v.audience, method: v.method, path: url.pathname,
    query: url.search.slice(1), contentSha256: checks.content_sha256, timestamp: v.timestamp, nonce: v.nonce });
  checks.digest = digestOf(checks.signature_base);
  const headers = await signRequest(wallet, { chainId: v.chain_id, audience: v.audience, method: v.method, url: v.url,
    body: new Uint8Array(body), timestamp: v.timestamp, nonce: v.nonce });
  checks.signature = headers["X-MedLedger-Signature"];
  checks.signer = headers["X-MedLedger-Signer"];
  const wrong = Object.entries(checks).filter(([k, value]) => value !== v.expected[k]);
  for (const [k, value] of wrong) console.log(`FAIL ${v.name}: ${k} = ${JSON.stringify(value)}, expected ${JSON.stringify(v.expected[k])}`);
  if (wrong.length === 0) console.log(`ok ${v.name}`);
  failures += wrong.length;
}
process.exitCode = failures ? 1 : 0;
