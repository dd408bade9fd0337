// The patient's own records, opened in the browser: no node sees their plaintext.
//
// The custodian wraps a record's data key for a key made here (WebCrypto X25519, the private half not
// extractable, living as long as the page); the key is unwrapped with HPKE (RFC 9180, base mode,
// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) and the record decrypted with MedLedger's
// streaming format (crypto/_streaming.py: AES-256-GCM segments under an HKDF-derived key bound to the
// record's context). The archive ("download all my records") is the same ZIP as `medledger patient
// export` writes (ledger_api/records/export_archive.py), and `medledger patient verify-export` checks it.
// Also runs in Node 20 (its WebCrypto), where the tests check it against the Python implementation.

const te = new TextEncoder();
const subtle = globalThis.crypto.subtle;

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
}
const u16 = (n) => new Uint8Array([(n >> 8) & 0xff, n & 0xff]);
const u32 = (n) => new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
export const fromHex = (text) => Uint8Array.from(text.replace(/^0x/, "").match(/../g) || [], (b) => parseInt(b, 16));
export const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
export function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}
export const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

// ------------------------------------------------------------------------------------- the reader key

/** A fresh X25519 key pair for this page: the public half goes to the node, the private half stays. */
export async function newReaderKey() {
  const pair = await subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
  const publicRaw = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
  return { privateKey: pair.privateKey, publicRaw, header: toBase64(publicRaw) };
}

// ------------------------------------------------------------------------------------- HPKE (RFC 9180)

async function hmac(key, data) {
  // HKDF-Extract with an empty salt is HMAC keyed with HashLen zero bytes (RFC 5869 2.2), the same key
  // once HMAC pads it; WebCrypto refuses an empty HMAC key, so the zeros are spelled out
  const raw = key.length ? key : new Uint8Array(32);
  const k = await subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", k, data));
}

async function expand(prk, info, length) {
  let block = new Uint8Array(0);
  const out = [];
  for (let i = 1, made = 0; made < length; i += 1) {
    block = await hmac(prk, concat(block, info, new Uint8Array([i])));
    out.push(block);
    made += block.length;
  }
  return concat(...out).subarray(0, length);
}

const KEM_SUITE = concat(te.encode("KEM"), u16(0x0020));
const HPKE_SUITE = concat(te.encode("HPKE"), u16(0x0020), u16(0x0001), u16(0x0002));
const V1 = te.encode("HPKE-v1");
const labeledExtract = (suite, salt, label, ikm) => hmac(salt, concat(V1, suite, te.encode(label), ikm));
const labeledExpand = (suite, prk, label, info, length) =>
  expand(prk, concat(u16(length), V1, suite, te.encode(label), info), length);

/** The HPKE ``info`` of a wrapped key (crypto/_hpke.py WrapContext): record, version, reader, suite, key id. */
export function wrapInfo(recordId, version, reader, suite, keyId) {
  return concat(te.encode("MedLedger wrap v1\0"), fromHex(recordId), u32(version), fromHex(reader),
                new Uint8Array([suite]), keyId);
}

/** Opens a version-1 wrapped key made for ``reader`` (newReaderKey): the record's 32-byte data key. */
export async function unwrapDataKey(wrapped, reader, recordId, version, readerAddress) {
  if (wrapped[0] !== 1 || wrapped[1] !== 2) throw new Error("not a wrapped key for an X25519 reader key");
  const keyId = wrapped.subarray(2, 18);
  const enc = wrapped.subarray(18, 50);
  const sealed = wrapped.subarray(50);
  const ephemeral = await subtle.importKey("raw", enc, { name: "X25519" }, false, []);
  const dh = new Uint8Array(await subtle.deriveBits({ name: "X25519", public: ephemeral }, reader.privateKey, 256));
  const empty = new Uint8Array(0);
  const eae = await labeledExtract(KEM_SUITE, empty, "eae_prk", dh);
  const shared = await labeledExpand(KEM_SUITE, eae, "shared_secret", concat(enc, reader.publicRaw), 32);
  const info = wrapInfo(recordId, version, readerAddress, 2, keyId);
  const context = concat(new Uint8Array([0]), await labeledExtract(HPKE_SUITE, empty, "psk_id_hash", empty),
                         await labeledExtract(HPKE_SUITE, empty, "info_hash", info));
  const secret = await labeledExtract(HPKE_SUITE, shared, "secret", empty);
  const key = await labeledExpand(HPKE_SUITE, secret, "key", context, 32);
  const nonce = await labeledExpand(HPKE_SUITE, secret, "base_nonce", context, 12);
  const aes = await subtle.importKey("raw", key, "AES-GCM", false, ["decrypt"]);
  return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: nonce }, aes, sealed));
}

// ------------------------------------------------------------------------------------- the record

/** A record version's associated data (crypto/_record.py): record id, version, sealing custodian, patient. */
export function recordContext(recordId, version, custodian, patient) {
  return concat(te.encode("MedLedger record v1\0"), fromHex(recordId), u32(version), fromHex(custodian),
                fromHex(patient));
}

/** Decrypts a record's ciphertext (MedLedger stream v1); throws if anything was altered. */
export async function decryptRecord(ciphertext, dataKey, associatedData) {
  const header = ciphertext.subarray(0, 44);
  if (header.length !== 44 || header[0] !== 1) throw new Error("not a MedLedger stream v1 ciphertext");
  const size = new DataView(header.buffer, header.byteOffset, 44).getUint32(1);
  const ikm = await subtle.importKey("raw", dataKey, "HKDF", false, ["deriveKey"]);
  const key = await subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: header.subarray(5, 37),
      info: concat(te.encode("MedLedger stream v1\0"), associatedData) },
    ikm, { name: "AES-GCM", length: 256 }, false, ["decrypt"]);
  const body = ciphertext.subarray(44);
  const count = Math.max(1, Math.ceil(body.length / size));
  const parts = [];
  for (let i = 0; i < count; i += 1) {
    const nonce = concat(header.subarray(37, 44), u32(i), new Uint8Array([i === count - 1 ? 1 : 0]));
    const segment = body.subarray(i * size, Math.min((i + 1) * size, body.length));
    parts.push(new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: header }, key, segment)));
  }
  return concat(...parts);
}

/**
 * Fetches the patient's own copy of a record (through the node the page came from) and opens it here.
 * ``fetcher(path, headers)`` returns a fetch Response (the portal adds the session). ``readerAddress``: the
 * signed-in account, for which the custodian wrapped the key: the patient's own, or their delegate's.
 */
export async function openOwnRecord(fetcher, patient, recordId, reader, readerAddress) {
  const response = await fetcher(`/v1/patients/${patient}/records/${recordId}/content`,
                                 { "X-MedLedger-Reader-Key": reader.header });
  const h = (name) => response.headers.get(name);
  const ciphertext = new Uint8Array(await response.arrayBuffer());
  const version = Number(h("X-MedLedger-Version"));
  const dataKey = await unwrapDataKey(fromBase64(h("X-MedLedger-Wrapped-Key")), reader, recordId, version,
                                     readerAddress);
  const sealedBy = h("X-MedLedger-Sealed-By") || h("X-MedLedger-Custodian");
  const plaintext = await decryptRecord(ciphertext, dataKey,
                                        recordContext(recordId, version, sealedBy, h("X-MedLedger-Patient")));
  return { plaintext, ciphertext, dataKey, version, sealedBy, contentHash: h("X-MedLedger-Content-Hash"),
           mediaType: h("X-MedLedger-Media-Type") || "application/octet-stream" };
}

// ------------------------------------------------------------------------------------- the archive

const EXTENSIONS = { "application/pdf": "pdf", "application/json": "json", "application/fhir+json": "json",
                     "text/plain": "txt", "image/png": "png", "image/jpeg": "jpg", "application/dicom": "dcm" };
export const fileName = (recordId, version, mediaType) => `${recordId}-v${version}.${EXTENSIONS[mediaType] || "bin"}`;

function uuidOf(recordId) {
  const raw = fromHex(recordId).slice(0, 16);
  raw[6] = (raw[6] & 0x0f) | 0x40;
  raw[8] = (raw[8] & 0x3f) | 0x80;
  const h = toHex(raw);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function bundleEntry(record, plaintext) {
  const fullUrl = `urn:uuid:${uuidOf(record.record_id)}`;
  if (record.fhir_resource_type) {
    try {
      const resource = JSON.parse(new TextDecoder().decode(plaintext));
      if (resource && resource.resourceType === record.fhir_resource_type) return { fullUrl, resource };
    } catch { /* declared FHIR but not FHIR JSON: kept as a document */ }
  }
  const sha1 = new Uint8Array(await subtle.digest("SHA-1", plaintext));
  return { fullUrl, resource: {
    resourceType: "DocumentReference", status: "current",
    identifier: [{ system: "urn:medledger:record", value: `${record.record_id}/v${record.version}` }],
    subject: { identifier: { system: "urn:medledger:patient", value: record.patient } },
    custodian: { display: record.custodian_name || record.custodian },
    date: record.created_at,
    content: [{ attachment: { contentType: record.media_type, url: record.file, size: plaintext.length,
                              hash: toBase64(sha1), title: record.file.split("/").pop() } }],
  } };
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();
function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i += 1) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A ZIP (stored, UTF-8 names) of ``files`` ([name, bytes]): as a list of parts for a Blob. */
export function zipParts(files) {
  const parts = [];
  const central = [];
  let offset = 0;
  const le = (size, value) => {
    const out = new Uint8Array(size);
    for (let i = 0; i < size; i += 1) out[i] = (value / 2 ** (8 * i)) & 0xff;
    return out;
  };
  for (const [name, data] of files) {
    const encoded = te.encode(name);
    const crc = crc32(data);
    const common = concat(le(2, 20), le(2, 0x0800), le(2, 0), le(2, 0), le(2, 33), le(4, crc),
                          le(4, data.length), le(4, data.length), le(2, encoded.length), le(2, 0));
    const local = concat(le(4, 0x04034b50), common, encoded);
    parts.push(local, data);
    central.push(concat(le(4, 0x02014b50), le(2, 20), common, le(2, 0), le(2, 0), le(2, 0), le(4, 0),
                        le(4, offset), encoded));
    offset += local.length + data.length;
  }
  const directory = concat(...central);
  parts.push(directory, concat(le(4, 0x06054b50), le(2, 0), le(2, 0), le(2, files.length), le(2, files.length),
                               le(4, directory.length), le(4, offset), le(2, 0)));
  return parts;
}

/**
 * The archive of ``records`` (the overview's views), each opened by ``open(record)`` (openOwnRecord),
 * ``progress(done, total)`` after each: ``{ parts, manifest }``.
 */
export async function buildArchive({ patient, chainId, records, open, progress = () => {}, consents = [], notices = [] }) {
  const exportedAt = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const files = [];
  const entries = [];
  const manifestRecords = [];
  let done = 0;
  for (const view of records) {
    const copy = await open(view);
    const name = fileName(view.id, copy.version, view.media_type);
    const record = {
      record_id: view.id, version: copy.version, patient: view.patient, custodian: view.custodian,
      custodian_name: view.custodian_name || "", sealed_by: copy.sealedBy, category: view.category,
      media_type: view.media_type, fhir_resource_type: view.fhir_resource_type || null, created_at: view.created_at,
      retention_until: view.retention_until || null, restricted: Boolean(view.restricted),
      content_hash: copy.contentHash, subject_salt: view.subject_salt || "", encounter_date: view.encounter_date || null,
      file: `files/${name}`, ciphertext: `ciphertext/${name.replace(/\.[^.]+$/, "")}.bin`,
      data_key: toHex(copy.dataKey),
      plaintext_sha256: toHex(new Uint8Array(await subtle.digest("SHA-256", copy.plaintext))),
      size: copy.plaintext.length,
    };
    files.push([record.file, copy.plaintext], [record.ciphertext, copy.ciphertext]);
    entries.push(await bundleEntry(record, copy.plaintext));
    manifestRecords.push(record);
    done += 1;
    progress(done, records.length);
  }
  const kept = notices.map((n) => [`privacy-notices/v${n.version}.json`,
                                   { version: n.version, sha256: n.sha256, text: n.text }]);
  const manifest = { format: "medledger-export/1", patient, exported_at: exportedAt, chain_id: chainId,
                     records: manifestRecords, consents, privacy_notices: kept.map(([path]) => path) };
  for (const [path, notice] of kept) files.push([path, te.encode(JSON.stringify(notice, null, 2))]);
  const bundle = { resourceType: "Bundle", type: "collection", timestamp: exportedAt, entry: entries };
  files.push(["manifest.json", te.encode(JSON.stringify(manifest, null, 2))],
             ["bundle.json", te.encode(JSON.stringify(bundle, null, 2))]);
  return { parts: zipParts(files), manifest };
}
