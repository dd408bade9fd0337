// The portal's own-record code (ledger_api/portal/static/own-records.js) run in Node's WebCrypto on a
// record the Python side encrypted and wrapped: prints what it opened, and the archive it builds.
//   node tests/js/own_record.mjs CASE.json OUT.zip
import { readFileSync, writeFileSync } from "node:fs";
import { buildArchive, decryptRecord, fromBase64, recordContext, toHex, unwrapDataKey }
  from "../../ledger_api/portal/static/own-records.js";

const c = JSON.parse(readFileSync(process.argv[2], "utf8"));
const privateKey = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "X25519", d: c.d, x: c.x }, { name: "X25519" },
                                                 false, ["deriveBits"]);
const reader = { privateKey, publicRaw: Buffer.from(c.x, "base64url") };
const wrapped = fromBase64(c.wrapped);
const dataKey = await unwrapDataKey(wrapped, reader, c.record_id, c.version, c.patient);
const ciphertext = fromBase64(c.ciphertext);
const plaintext = await decryptRecord(ciphertext, dataKey, recordContext(c.record_id, c.version, c.custodian, c.patient));
let tampered = "opened";
try {
  const altered = ciphertext.slice();
  altered[60] ^= 1;
  await decryptRecord(altered, dataKey, recordContext(c.record_id, c.version, c.custodian, c.patient));
} catch { tampered = "refused"; }
const view = { id: c.record_id, patient: c.patient, custodian: c.custodian, custodian_name: "Nan'ao", category: 0,
               media_type: c.media_type, fhir_resource_type: c.fhir_resource_type, created_at: "2026-11-30T06:00:00Z",
               subject_salt: c.salt };
const { parts } = await buildArchive({ patient: c.patient, chainId: 1, records: [view],
  open: async () => ({ plaintext, ciphertext, dataKey, version: c.version, sealedBy: c.custodian,
                       contentHash: c.content_hash, mediaType: c.media_type }) });
writeFileSync(process.argv[3], Buffer.concat(parts.map((p) => Buffer.from(p))));
console.log(JSON.stringify({ plaintext: toHex(plaintext), tampered }));
