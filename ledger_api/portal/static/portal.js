// MedLedger patient portal: the patient's key lives here, in the browser, and never leaves it.
//
// The key is an Ethereum account. It is kept in localStorage only as a Web3 Secret Storage
// (keystore v3, scrypt + AES) file locked with the patient's passphrase, or it stays in an injected
// EIP-1193 wallet. Once unlocked it is held in memory for this page's life only. The node receives
// signatures: an EIP-4361 sign-in message (which also lets this hospital show the patient's records
// and history from the other members) and EIP-712 consent messages, shown in words before signing.
// Everything on screen is built with textContent: nothing the server or another member sends is
// ever parsed as HTML. A patient's own records are decrypted here, in the browser (own-records.js):
// the hospitals send them sealed for a key this page makes, and no node sees the plaintext.
// Before every signature the consortium's privacy notice is shown; a grant signs its version and the
// SHA-256 this page computes from the very text it shows.

import * as ethers from "./vendor/ethers.min.js";
import * as ownRecords from "./own-records.js";
import { workflows } from "./hospital-workflows.js";

const config = JSON.parse(document.getElementById("portal-config").textContent);
const M = config.messages;
const KEYSTORE_KEY = "medledger.keystore";
// how long a child's signed claim stays valid for the desk to send (it names its deadline)
const CLAIM_VALIDITY_S = 24 * 3600;
const CONSORTIUM_VIEW = "urn:medledger:consortium-view";
const SESSION_MINUTES = 15;
const SIGNATURE_VALIDITY_S = 600;
const EIP712_DOMAIN = { name: "MedLedger Consent", version: "1" };
const EIP712_TYPES = {
  ConsentGrant: [
    { name: "patient", type: "address" }, { name: "grantees", type: "address[]" },
    { name: "categories", type: "uint16" }, { name: "purposes", type: "uint8" },
    { name: "validFrom", type: "uint32" }, { name: "validUntil", type: "uint32" },
    { name: "careFrom", type: "uint16" }, { name: "careTo", type: "uint16" },
    { name: "noticeVersion", type: "uint16" }, { name: "noticeHash", type: "bytes32" },
    { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" },
  ],
  ConsentRevocation: [
    { name: "patient", type: "address" }, { name: "consentId", type: "uint256" },
    { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" },
  ],
  ConsentConfirmation: [
    { name: "patient", type: "address" }, { name: "consentId", type: "uint256" },
    { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" },
  ],
  MinorClaim: [
    { name: "account", type: "address" }, { name: "key", type: "address" },
    { name: "guardianScope", type: "uint8" }, { name: "deadline", type: "uint256" },
  ],
  KeyRotation: [
    { name: "account", type: "address" }, { name: "newKey", type: "address" },
    { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" },
  ],
  RecoveryCancellation: [
    { name: "account", type: "address" }, { name: "newKey", type: "address" },
    { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" },
  ],
  DelegateChange: [
    { name: "patient", type: "address" }, { name: "delegate", type: "address" },
    { name: "scope", type: "uint8" }, { name: "validUntil", type: "uint32" },
    { name: "excludedCategories", type: "uint16" }, { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" },
  ],
  SharingRestriction: [
    { name: "patient", type: "address" }, { name: "restricted", type: "bool" },
    { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" },
  ],
  RecordRestriction: [
    { name: "patient", type: "address" }, { name: "recordId", type: "bytes32" }, { name: "restricted", type: "bool" },
    { name: "issuedAt", type: "uint256" }, { name: "deadline", type: "uint256" },
  ],
  RecordHiding: [
    { name: "patient", type: "address" }, { name: "recordId", type: "bytes32" }, { name: "hidden", type: "bool" },
    { name: "issuedAt", type: "uint256" }, { name: "deadline", type: "uint256" },
  ],
};
// what the viewer shows in the page; anything else is offered as a download only
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
const TEXT_TYPES = /^(text\/plain|text\/csv|application\/json|application\/fhir\+json)$/;

const state = { signer: null, kind: null, address: null, token: null, members: [], records: null, reader: null,
                viewUrls: [], notice: null };
const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------------------------------ words

function t(key, vars = {}) {
  const text = M[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

const dateFormat = new Intl.DateTimeFormat(config.language === "zh" ? "zh-CN" : "en-GB",
  { dateStyle: "medium", timeStyle: "short" });
const dayFormat = new Intl.DateTimeFormat(config.language === "zh" ? "zh-CN" : "en-GB", { dateStyle: "medium" });
const when = (value) => dateFormat.format(typeof value === "number" ? new Date(value * 1000) : new Date(value));
const day = (seconds) => dayFormat.format(new Date(seconds * 1000));

function labels(list, bits) {
  return list.filter((item) => (bits >> item.bit) & 1).map((item) => item.label).join(config.language === "zh" ? "、" : ", ");
}
const categoryLabel = (bit) => config.categories.find((c) => c.bit === bit)?.label ?? t("unknown");
const purposeLabel = (bit) => config.purposes.find((p) => p.bit === bit)?.label ?? t("unknown");
// a member under its name in the page's language (the consortium's directory), else as registered on chain
function memberName(account, fallback) {
  if (!account) return fallback ?? t("unknown");
  return config.names?.[account.toLowerCase()]
    ?? state.members.find((m) => m.account.toLowerCase() === account.toLowerCase())?.name ?? fallback ?? account;
}
const listSeparator = config.language === "zh" ? "、" : ", ";
const memberNames = (accounts) => accounts.map((a) => memberName(a)).join(listSeparator);
// days of care as the chain counts them: whole days since 1970-01-01 (0: an open end)
// (care before 1970 counts as undated: 0, an open end, as the node counts it)
const dayNumber = (iso) => (iso ? Math.max(0, Math.round(
  Date.UTC(...iso.split("-").map((n, i) => Number(n) - (i === 1 ? 1 : 0))) / 86_400_000)) : 0);
const isoDay = (value) => dayFormat.format(new Date(`${value}T00:00:00`));
function careWords(from, to) {
  if (!from && !to) return t("care.all");
  if (from && to) return t("care.range", { from: isoDay(from), to: isoDay(to) });
  return from ? t("care.since", { from: isoDay(from) }) : t("care.until", { to: isoDay(to) });
}
// consent ids are (patient << 96) | index: the index is what a person can read and compare
const consentNumber = (id) => String(BigInt(id) & ((1n << 96n) - 1n));

// ------------------------------------------------------------------------------------------ the DOM

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function status(text) { $("status").textContent = text || ""; }

function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = !text;
  if (text) status("");
}

function busy(button, running) {
  if (!button) return;
  button.disabled = running;
  if (running) status(t("working"));
}

function show(screen) {
  for (const section of document.querySelectorAll("[data-screen]")) section.hidden = section.id !== screen;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.section === screen) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const heading = document.querySelector(`#${screen} h2`);
  if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
}

// ------------------------------------------------------------------------------------------ the API

class ApiError extends Error {}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                   cache: "no-store", credentials: "omit" });
  } catch {
    throw new ApiError(t("error.network"));
  }
  if (response.status === 204) return null;
  const payload = await response.json().catch(() => ({}));
  if (response.status === 401 && state.token) {
    signedOut();
    throw new ApiError(t("error.session"));
  }
  if (!response.ok) throw new ApiError(payload.detail || payload.title || `HTTP ${response.status}`);
  return payload;
}

async function guarded(button, work) {
  showError("");
  busy(button, true);
  try {
    await work();
  } catch (error) {
    showError(error instanceof ApiError ? error.message : t("error.generic", { reason: error.message || error }));
  } finally {
    busy(button, false);
    if ($("status").textContent === t("working")) status("");
  }
}

// ------------------------------------------------------------------------------------------ the key

function storedKeystore() {
  const text = localStorage.getItem(KEYSTORE_KEY);
  if (!text) return null;
  try {
    const address = ethers.getAddress("0x" + JSON.parse(text).address.replace(/^0x/, ""));
    return { text, address };
  } catch {
    return null;
  }
}

function downloadBackup() {
  const stored = storedKeystore();
  if (!stored) return;
  const link = el("a", { href: URL.createObjectURL(new Blob([stored.text], { type: "application/json" })),
                         download: `medledger-account-${stored.address}.json` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

async function createAccount(event) {
  event.preventDefault();
  const passphrase = $("create-passphrase").value;
  if (passphrase.length < 10) return showError(t("create.short"));
  if (passphrase !== $("create-confirm").value) return showError(t("create.mismatch"));
  const button = event.submitter;
  await guarded(button, async () => {
    const wallet = ethers.Wallet.createRandom();
    localStorage.setItem(KEYSTORE_KEY, await wallet.encrypt(passphrase));
    $("create-form").reset();
    useSigner(wallet, "local");
    $("backup-address").textContent = wallet.address;
    show("backup");
  });
}

async function unlockAccount(event) {
  event.preventDefault();
  const stored = storedKeystore();
  const button = event.submitter;
  await guarded(button, async () => {
    let wallet;
    try {
      wallet = await ethers.Wallet.fromEncryptedJson(stored.text, $("unlock-passphrase").value);
    } catch {
      throw new ApiError(t("unlock.failed"));
    }
    $("unlock-passphrase").value = "";
    useSigner(wallet, "local");
    await signIn();
  });
}

async function importAccount(event) {
  event.preventDefault();
  const button = event.submitter;
  const passphrase = $("import-passphrase").value;
  const file = $("import-file").files[0];
  const key = $("import-key").value.trim();
  await guarded(button, async () => {
    let wallet;
    try {
      if (file) {
        const text = await file.text();
        wallet = await ethers.Wallet.fromEncryptedJson(text, passphrase);
        localStorage.setItem(KEYSTORE_KEY, text);
      } else {
        if (!/^(0x)?[0-9a-fA-F]{64}$/.test(key)) throw new Error("64 hex digits expected");
        if (passphrase.length < 10) throw new Error(t("create.short"));
        wallet = new ethers.Wallet(key.startsWith("0x") ? key : "0x" + key);
        localStorage.setItem(KEYSTORE_KEY, await wallet.encrypt(passphrase));
      }
    } catch (error) {
      throw new ApiError(t("import.failed", { reason: error.shortMessage || error.message }));
    }
    $("import-form").reset();
    useSigner(wallet, "local");
    if (file) await signIn();
    else { $("backup-address").textContent = wallet.address; show("backup"); }
  });
}

async function connectWallet(event) {
  await guarded(event.currentTarget, async () => {
    try {
      const provider = new ethers.BrowserProvider(window.ethereum);
      await provider.send("eth_requestAccounts", []);
      const signer = await provider.getSigner();
      useSigner(signer, "wallet", await signer.getAddress());
    } catch (error) {
      throw new ApiError(t("wallet.failed", { reason: error.shortMessage || error.message }));
    }
    await signIn();
  });
}

// the key that signs (state.key) and the account it signs for (state.address: the same until the account's key
// was rotated or recovered; the node's sign-in answers which account the key signs for)
function useSigner(signer, kind, address) {
  state.signer = signer;
  state.kind = kind;
  state.key = ethers.getAddress(address || signer.address);
  state.address = state.key;
}

async function signTyped(primaryType, message, domainInfo) {
  const domain = { ...EIP712_DOMAIN, chainId: domainInfo.chain_id, verifyingContract: domainInfo.verifying_contract };
  const signature = ethers.Signature.from(await state.signer.signTypedData(domain,
    { [primaryType]: EIP712_TYPES[primaryType] }, message));
  return { v: signature.v, r: signature.r, s: signature.s };
}

// ------------------------------------------------------------------------------------------ sign-in

function iso(date) { return date.toISOString().replace(/\.\d{3}Z$/, "Z"); }

// EIP-4361 allows only ASCII (RFC 3986 characters and spaces) in the statement, so it is English in
// every language; the screen around it explains the sign-in in the patient's language
const SIGN_IN_STATEMENT = "Sign in to MedLedger, and let this hospital show me my records and access history "
  + "from every member of the consortium.";

function signInMessage(challenge, address, issued, expires) {
  return `${challenge.domain} wants you to sign in with your Ethereum account:\n${address}\n\n`
    + `${SIGN_IN_STATEMENT}\n\nURI: ${challenge.uri}\nVersion: 1\nChain ID: ${challenge.chain_id}\n`
    + `Nonce: ${challenge.nonce}\nIssued At: ${iso(issued)}\nExpiration Time: ${iso(expires)}\n`
    + `Resources:\n- ${CONSORTIUM_VIEW}`;
}

async function signIn() {
  const challenge = await api("/v1/auth/challenge", { method: "POST" });
  const issued = new Date();
  const expires = new Date(issued.getTime() + SESSION_MINUTES * 60_000);
  const message = signInMessage(challenge, state.key, issued, expires);
  let signature;
  try {
    signature = await state.signer.signMessage(message);
  } catch (error) {
    throw new ApiError(t("signin.failed", { reason: error.shortMessage || error.message }));
  }
  const session = await api("/v1/auth/session", { method: "POST", body: { message, signature } });
  state.token = session.token;
  state.address = ethers.getAddress(session.patient);  // the account this key signs for
  state.own = state.address;
  showActing();
  state.members = await api("/v1/consortium/members");
  $("who-address").textContent = t("signed_in_as", { address: state.address });
  $("who").hidden = false;
  $("nav").hidden = false;
  status("");
  route();
  wf.refreshCount();
}

function signedOut() {
  state.token = null;
  state.acting = null;
  state.own = null;
  $("acting").hidden = true;
  state.reader = null;
  state.signer = null;
  state.records = null;
  $("who").hidden = true;
  $("nav").hidden = true;
  prepareWelcome();
  show("welcome");
}

async function signOut() {
  try { await api("/v1/auth/session", { method: "DELETE" }); } catch { /* the session ends here either way */ }
  signedOut();
}

function prepareWelcome() {
  const stored = storedKeystore();
  $("unlock-form").hidden = !stored;
  if (stored) $("unlock-account").textContent = t("unlock.account", { address: stored.address });
  $("wallet-panel").hidden = !window.ethereum;
}

// ------------------------------------------------------------------------------------------ screens

const wf = workflows({
  api, t, el, $, guarded, status, showError, state, config, types: EIP712_TYPES, memberName, memberNames, categoryLabel,
  purposeLabel, consentNumber, when, day, labels, badge, cell, partialNotice, checkedBits, signingDomain,
  confirmSignature, signTyped, awaitRelay, SIGNATURE_VALIDITY_S, grantMessage, grantWords, grantBody,
});
const SCREENS = { inbox: wf.loadInbox, records: loadRecords, consents: loadConsents, history: loadHistory,
                  delegates: loadDelegates, hospitals: wf.loadLinks, account: loadAccount };

function route() {
  if (!state.token) return show("welcome");
  const screen = location.hash.slice(1) in SCREENS ? location.hash.slice(1) : "records";
  show(screen);
  guarded(null, SCREENS[screen]);
}

function partialNotice(section, members) {
  const missing = members.filter((m) => m.status !== "returned").map((m) => t(`member.${m.status}`, { name: m.name }));
  const notice = document.querySelector(`#${section} [data-partial]`);
  notice.textContent = missing.length ? t("members.partial", { members: missing.join(", ") }) : "";
  notice.hidden = !missing.length;
}

function cell(label, ...content) { return el("td", { "data-label": label }, ...content); }
function badge(kind, text) { return el("span", { class: `badge ${kind}`, text }); }

function recordLabel(record) {
  return `${categoryLabel(record.category)} — ${memberName(record.custodian, record.custodian_name)} — ${when(record.created_at)}`;
}

async function loadRecords() {
  const [view, restriction] = await Promise.all([api(`/v1/patients/${state.address}/overview/records`),
                                                 api(`/v1/patients/${state.address}/restriction`)]);
  state.records = view.records;
  partialNotice("records", view.members);
  const body = $("records-body");
  body.replaceChildren(...view.records.map((record) => {
    const latest = record.versions[record.versions.length - 1];
    const anchoring = latest ? latest.anchoring : "none";
    const label = recordLabel(record);
    const actions = cell(t("col.actions"));
    actions.classList.add("record-actions");
    if (!record.erased) {
      actions.append(
        el("button", { type: "button", class: "secondary", text: t("records.view"), "aria-label": `${t("records.view")}: ${label}`,
                       "data-action": "view", onclick: (e) => viewRecord(e.currentTarget, record) }),
        el("button", { type: "button", class: "secondary", text: t("records.download"),
                       "aria-label": `${t("records.download")}: ${label}`, "data-action": "download",
                       onclick: (e) => downloadRecord(e.currentTarget, record) }),
        el("button", { type: "button", class: record.restricted ? "secondary" : "danger",
                       text: t(record.restricted ? "records.lift" : "records.restrict"),
                       "aria-label": `${t(record.restricted ? "records.lift" : "records.restrict")}: ${label}`,
                       "data-action": record.restricted ? "lift" : "restrict",
                       onclick: (e) => restrictRecord(e.currentTarget, record, !record.restricted) }),
        el("button", { type: "button", class: "secondary", text: t(record.hidden ? "records.show" : "records.hide"),
                       "aria-label": `${t(record.hidden ? "records.show" : "records.hide")}: ${label}`,
                       "data-action": record.hidden ? "show" : "hide",
                       onclick: (e) => hideRecord(e.currentTarget, record, !record.hidden) }));
    }
    const sharing = record.restricted ? "restricted" : record.hidden ? "hidden" : "open";
    return el("tr", { "data-record-id": record.id, "data-restricted": String(record.restricted),
                      "data-hidden": String(Boolean(record.hidden)) },
      cell(t("col.category"), categoryLabel(record.category)),
      cell(t("col.custodian"), memberName(record.custodian, record.custodian_name)),
      cell(t("col.date"), when(record.created_at)),
      cell(t("col.version"), String(record.latest_version)),
      cell(t("col.anchoring"), badge(anchoring, t(`anchoring.${anchoring}`))),
      cell(t("col.retention"), record.retention_until ? dayFormat.format(new Date(record.retention_until))
                                                      : t("records.kept_indefinitely")),
      cell(t("col.care_day"), record.encounter_date ? isoDay(record.encounter_date) : t("unknown")),
      cell(t("col.restriction"), badge(sharing, t(`records.${sharing}`))),
      actions);
  }));
  $("records-empty").hidden = view.records.length > 0;
  $("export-all").disabled = !view.records.some((r) => !r.erased);
  $("restrict-all-state").textContent = t(restriction.restricted ? "restrict.all_on" : "restrict.all_off");
  $("restrict-all").hidden = restriction.restricted;
  $("lift-all").hidden = !restriction.restricted;
}

// ------------------------------------------------------------------------------------------ own records

async function fetchOwn(path, headers) {
  let response;
  try {
    response = await fetch(path, { headers: { ...headers, Authorization: `Bearer ${state.token}` }, cache: "no-store",
                                   credentials: "omit" });
  } catch {
    throw new ApiError(t("error.network"));
  }
  if (response.status === 401) { signedOut(); throw new ApiError(t("error.session")); }
  if (!response.ok) {
    const payload = await response.json().catch(() => ({}));
    throw new ApiError(payload.detail || payload.title || `HTTP ${response.status}`);
  }
  return response;
}

async function openRecord(record) {
  state.reader ??= await ownRecords.newReaderKey();  // made once per page; its private half never leaves it
  // the key is wrapped for whoever signed in: the patient, or a guardian acting for them
  return ownRecords.openOwnRecord(fetchOwn, state.address, record.id, state.reader, state.own);
}

function blobUrl(bytes, type) {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  state.viewUrls.push(url);
  return url;
}

function saveFile(bytes, name) {
  // as bytes, never as a type a browser might render: a record is the patient's file, not a page
  const link = el("a", { href: URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" })), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

async function viewRecord(button, record) {
  await guarded(button, async () => {
    status(t("records.opening"));
    const copy = await openRecord(record);
    const type = record.media_type.toLowerCase();
    const title = recordLabel(record);
    $("view-h").textContent = title;
    $("view-meta").textContent = t("view.meta", { custodian: memberName(record.custodian, record.custodian_name), version: copy.version });
    let shown;
    if (TEXT_TYPES.test(type)) {
      let text = new TextDecoder().decode(copy.plaintext);
      if (type.endsWith("json")) { try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* as sent */ } }
      shown = el("pre", { text, tabindex: "0", "aria-label": title });
    } else if (IMAGE_TYPES.includes(type)) {
      shown = el("img", { src: blobUrl(copy.plaintext, type), alt: title });
    } else if (type === "application/pdf") {
      shown = el("iframe", { src: blobUrl(copy.plaintext, "application/pdf"), title });
    } else {
      shown = el("p", { text: t("view.cannot_show") });
    }
    $("view-body").replaceChildren(shown);
    const download = $("view-download");
    download.href = blobUrl(copy.plaintext, "application/octet-stream");
    download.download = ownRecords.fileName(record.id, copy.version, record.media_type);
    status("");
    $("view-dialog").showModal();
    $("view-close").focus();
  });
}

function closeViewer() {
  $("view-dialog").close();
  $("view-body").replaceChildren();
  for (const url of state.viewUrls.splice(0)) URL.revokeObjectURL(url);
}

async function downloadRecord(button, record) {
  await guarded(button, async () => {
    status(t("records.opening"));
    const copy = await openRecord(record);
    saveFile(copy.plaintext, ownRecords.fileName(record.id, copy.version, record.media_type));
    status("");
  });
}

async function exportAll(event) {
  const button = event.currentTarget;
  await guarded(button, async () => {
    const view = await api(`/v1/patients/${state.address}/overview/records`);
    const records = view.records.filter((r) => !r.erased);
    const domainInfo = await signingDomain();
    const bar = $("export-progress");
    bar.max = Math.max(1, records.length);
    bar.value = 0;
    bar.hidden = false;
    const consents = await api(`/v1/patients/${state.address}/consents`);
    const versions = [...new Set(consents.map((c) => c.notice_version).filter(Boolean))];
    const notices = await Promise.all(versions.map((v) => api(`/v1/privacy-notice/${v}`)));
    const { parts } = await ownRecords.buildArchive({
      patient: state.address, chainId: domainInfo.chain_id, records, open: openRecord, consents, notices,
      progress: (done, total) => {
        bar.value = done;
        $("export-status").textContent = t("records.export_progress", { done, total });
      },
    });
    const stamp = new Date().toISOString().slice(0, 10);
    saveFile(new Uint8Array(await new Blob(parts).arrayBuffer()), `medledger-records-${state.address}-${stamp}.zip`);
    $("export-status").textContent = t("records.export_done", { count: records.length });
    partialNotice("records", view.members);
  });
}

async function restrictRecord(button, record, restricted) {
  await guarded(button, async () => {
    const domainInfo = await signingDomain();
    const now = Math.floor(Date.now() / 1000);
    const message = { patient: state.address, recordId: `0x${record.id}`, restricted, issuedAt: Date.now(),
                      deadline: now + SIGNATURE_VALIDITY_S };
    const words = t(restricted ? "sign.restrict_record" : "sign.lift_record",
                    { category: categoryLabel(record.category), custodian: memberName(record.custodian, record.custodian_name) });
    if (!(await confirmSignature(words, "RecordRestriction", message, domainInfo))) return status("");
    const signature = await signTyped("RecordRestriction", message, domainInfo);
    const changed = await api(`/v1/records/${record.id}/restriction`, { method: "POST", body: {
      patient: state.address, restricted, issued_at: message.issuedAt, deadline: message.deadline, signature } });
    await loadRecords();
    status(t("restrict.done", { state: t(changed.restricted ? "records.restricted" : "records.open") }));
  });
}

async function hideRecord(button, record, hidden) {
  await guarded(button, async () => {
    const domainInfo = await signingDomain();
    const now = Math.floor(Date.now() / 1000);
    const message = { patient: state.address, recordId: `0x${record.id}`, hidden, issuedAt: Date.now(),
                      deadline: now + SIGNATURE_VALIDITY_S };
    const words = t(hidden ? "sign.hide_record" : "sign.show_record",
                    { category: categoryLabel(record.category), custodian: memberName(record.custodian, record.custodian_name) });
    if (!(await confirmSignature(words, "RecordHiding", message, domainInfo))) return status("");
    const signature = await signTyped("RecordHiding", message, domainInfo);
    const changed = await api(`/v1/records/${record.id}/hiding`, { method: "POST", body: {
      patient: state.address, hidden, issued_at: message.issuedAt, deadline: message.deadline, signature } });
    await loadRecords();
    status(t("hide.done", { state: t(changed.hidden ? "records.hidden" : "records.open") }));
  });
}

async function restrictAll(event, restricted) {
  const button = event.currentTarget;
  await guarded(button, async () => {
    const domainInfo = await signingDomain();
    const now = Math.floor(Date.now() / 1000);
    const message = { patient: state.address, restricted, nonce: domainInfo.nonce, deadline: now + SIGNATURE_VALIDITY_S };
    if (!(await confirmSignature(t(restricted ? "sign.restrict_all" : "sign.lift_all"), "SharingRestriction", message,
                                 domainInfo))) return status("");
    const signature = await signTyped("SharingRestriction", message, domainInfo);
    const relay = await api(`/v1/patients/${state.address}/restriction`, { method: "POST", body: {
      restricted, nonce: message.nonce, deadline: message.deadline, signature } });
    const outcome = await awaitRelay(relay);
    await loadRecords();
    status(t("restrict.done", { state: outcome }));
  });
}

async function loadConsents() {
  const consents = await api(`/v1/patients/${state.address}/consents`);
  const body = $("consents-body");
  body.replaceChildren(...consents.map((consent) => {
    const pending = consent.status === "pending";
    const number = pending ? "…" : consentNumber(consent.consent_id);
    const actions = cell("");
    const live = consent.status === "active" || consent.status === "not-yet-valid";
    if (live && consent.given_by_delegate && !consent.confirmed) {
      actions.append(el("button", { type: "button", "aria-label": `${t("confirm")} #${number}`, "data-action": "confirm",
                                    text: t("confirm"), onclick: (e) => confirmConsent(e, consent.consent_id) }), " ");
    }
    if (live) {
      actions.append(el("button", { type: "button", class: "danger", "aria-label": `${t("revoke")} #${number}`,
                                    text: t("revoke"), onclick: (e) => revoke(e, consent.consent_id) }));
    }
    const given = consent.given_by_delegate
      ? [" ", badge(consent.confirmed ? "confirmed" : "guardian", t(consent.confirmed ? "consents.confirmed" : "consents.by_guardian"))]
      : [];
    return el("tr", { "data-consent-id": consent.consent_id, "data-status": consent.status },
      cell("#", number),
      cell(t("consents.grantee"), memberNames(consent.grantees)),
      cell(t("consents.what"), labels(config.categories, consent.categories)),
      cell(t("consents.care"), careWords(consent.care_from, consent.care_to)),
      cell(t("consents.why"), labels(config.purposes, consent.purposes)),
      cell(t("consents.window"), `${day(consent.valid_from)} – ${day(consent.valid_until)}`),
      cell(t("consents.status"), badge(consent.status, t(`status.${consent.status}`)), ...given),
      actions);
  }));
  $("consents-empty").hidden = consents.length > 0;
  fillGrantForm();
}

function activeMembers() { return state.members.filter((m) => m.role === "member" && m.status === "active"); }

function fillGrantForm() {
  const box = $("grant-members");
  const ticked = new Set(checkedValues("grantee"));
  box.replaceChildren(...activeMembers().map((m, i) => el("div", {},
    el("input", { type: "checkbox", id: `grantee-${i}`, name: "grantee", value: m.account }),
    " ", el("label", { for: `grantee-${i}`, text: memberName(m.account, m.name) }))));
  const every = $("grant-all-members").checked;
  for (const input of box.querySelectorAll("input")) input.checked = every || ticked.has(input.value);
  $("grant-all-members").onchange = (e) => {
    for (const input of box.querySelectorAll("input")) input.checked = e.target.checked;
  };
  // "every member now" stays ticked only while every member is
  box.onchange = () => { $("grant-all-members").checked = [...box.querySelectorAll("input")].every((i) => i.checked); };
  for (const [box, list, name] of [["grant-categories", config.categories, "category"],
                                    ["grant-purposes", config.purposes, "purpose"]]) {
    if ($(box).childElementCount) continue;
    $(box).replaceChildren(...list.map((item) => el("div", {},
      el("input", { type: "checkbox", id: `${name}-${item.name}`, name, value: String(item.bit) }),
      " ", el("label", { for: `${name}-${item.name}`, text: item.label }))));
  }
  if (!$("grant-until").value) {
    const inMonth = new Date(Date.now() + 30 * 86_400_000);
    $("grant-until").value = inMonth.toISOString().slice(0, 10);
  }
  $("grant-until").min = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
}

function checkedValues(name) {
  return [...document.querySelectorAll(`input[name=${name}]:checked`)].map((box) => box.value);
}

function checkedBits(name) {
  return [...document.querySelectorAll(`input[name=${name}]:checked`)].reduce((bits, box) => bits | (1 << Number(box.value)), 0);
}

async function signingDomain() {
  await privacyNotice();
  return api(`/v1/patients/${state.address}/signing-domain`);
}

// the consortium's privacy notice, its SHA-256 recomputed here from the text shown (canonical JSON of
// en, version and zh): what a grant signs is what the patient was shown, whatever the node said
async function privacyNotice() {
  if (state.notice) return state.notice;
  const notice = await api("/v1/privacy-notice");
  const canonical = JSON.stringify({ en: notice.text.en, version: notice.version, zh: notice.text.zh });
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical)));
  const hash = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  if (hash !== notice.sha256) throw new ApiError(t("notice.mismatch"));
  state.notice = { ...notice, hash: `0x${hash}` };
  return state.notice;
}

function confirmSignature(words, primaryType, message, domainInfo) {
  const dialog = $("sign-dialog");
  $("sign-words").textContent = words;
  $("sign-binding").textContent = t("sign.binding", { chain: domainInfo.chain_id, contract: domainInfo.verifying_contract,
                                                       nonce: message.nonce ?? "—",
                                                       deadline: when(message.deadline) });
  const document712 = { domain: { ...EIP712_DOMAIN, chainId: domainInfo.chain_id,
                                  verifyingContract: domainInfo.verifying_contract },
                        primaryType, types: { [primaryType]: EIP712_TYPES[primaryType] }, message };
  $("sign-raw").textContent = JSON.stringify(document712, null, 2);
  $("sign-notice-version").textContent = t("notice.version", { version: state.notice.version,
                                                               hash: state.notice.sha256.slice(0, 16) });
  $("sign-notice-text").textContent = state.notice.text[config.language] ?? state.notice.text.en;
  return new Promise((resolve) => {
    const finish = (answer) => {
      $("sign-confirm").onclick = null;
      $("sign-cancel").onclick = null;
      dialog.close();
      resolve(answer);
    };
    $("sign-confirm").onclick = () => finish(true);
    $("sign-cancel").onclick = () => finish(false);
    dialog.oncancel = () => finish(false);
    dialog.showModal();
    $("sign-confirm").focus();
  });
}

async function awaitRelay(relay) {
  status(t("relay.pending"));
  const giveUp = Date.now() + 60_000;
  while (Date.now() < giveUp) {
    const current = await api(`/v1/relays/${relay.id}`);
    if (current.state === "confirmed") return t("relay.confirmed");
    if (current.state === "failed") throw new ApiError(`${t("relay.failed")}: ${current.last_error || ""}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return t("relay.timeout");
}

async function grant(event) {
  event.preventDefault();
  const categories = checkedBits("category");
  const purposes = checkedBits("purpose");
  if (!categories) return showError(t("grant.need_category"));
  if (!purposes) return showError(t("grant.need_purpose"));
  const grantees = checkedValues("grantee");
  if (!grantees.length) return showError(t("grant.need_member"));
  const [year, month, date] = $("grant-until").value.split("-").map(Number);
  const validUntil = Math.floor(new Date(year, month - 1, date, 23, 59, 59).getTime() / 1000);
  const now = Math.floor(Date.now() / 1000);
  if (!year || validUntil <= now) return showError(t("grant.need_future"));
  const careFrom = $("grant-care-from").value || null;
  const careTo = $("grant-care-to").value || null;
  if (careFrom && careTo && careFrom > careTo) return showError(t("grant.care_reversed"));
  const button = event.submitter;
  await guarded(button, async () => {
    const domainInfo = await signingDomain();
    const message = grantMessage({ grantees, categories, purposes, validFrom: now - 60, validUntil, careFrom, careTo,
                                   nonce: domainInfo.nonce, deadline: now + SIGNATURE_VALIDITY_S });
    const words = grantWords(message, careFrom, careTo);
    if (!(await confirmSignature(words, "ConsentGrant", message, domainInfo))) return status("");
    const signature = await signTyped("ConsentGrant", message, domainInfo);
    const relay = await api("/v1/consents", { method: "POST", body: grantBody(message, careFrom, careTo, signature) });
    await loadConsents();
    status(await awaitRelay(relay));
    await loadConsents();
  });
}

// a grant of these terms, under the privacy notice shown (``privacyNotice`` has read it by now)
function grantMessage({ grantees, categories, purposes, validFrom, validUntil, careFrom, careTo, nonce, deadline }) {
  return { patient: state.address, grantees, categories, purposes, validFrom, validUntil,
           careFrom: dayNumber(careFrom), careTo: dayNumber(careTo), noticeVersion: state.notice.version,
           noticeHash: state.notice.hash, nonce, deadline };
}

function grantWords(message, careFrom, careTo) {
  return t("sign.grant", { grantee: memberNames(message.grantees), categories: labels(config.categories, message.categories),
                           purposes: labels(config.purposes, message.purposes), from: day(message.validFrom),
                           until: day(message.validUntil) })
    + " " + t("sign.grant_care", { care: careWords(careFrom, careTo) })
    + " " + t("sign.grant_named");
}

function grantBody(message, careFrom, careTo, signature) {
  return { patient: message.patient, grantees: message.grantees, categories: message.categories,
           purposes: message.purposes, valid_from: message.validFrom, valid_until: message.validUntil,
           care_from: careFrom, care_to: careTo, notice_version: message.noticeVersion,
           notice_hash: message.noticeHash.slice(2), nonce: message.nonce, deadline: message.deadline, signature };
}

// a signed act on one consent (revoke it; confirm one a guardian gave): shown in words, signed, relayed,
// followed until on chain; what ``done`` says of the outcome is then shown
async function consentAct(event, consentId, primaryType, wordsKey, path, done) {
  await guarded(event.currentTarget, async () => {
    const domainInfo = await signingDomain();
    const now = Math.floor(Date.now() / 1000);
    const message = { patient: state.address, consentId, nonce: domainInfo.nonce, deadline: now + SIGNATURE_VALIDITY_S };
    if (!(await confirmSignature(t(wordsKey, { id: consentNumber(consentId) }), primaryType, message,
                                 domainInfo))) return status("");
    const signature = await signTyped(primaryType, message, domainInfo);
    const relay = await api(path, { method: "POST", body: {
      consent_id: consentId, nonce: message.nonce, deadline: message.deadline, signature } });
    const outcome = await awaitRelay(relay);
    await loadConsents();
    status(done(outcome));
  });
}

function revoke(event, consentId) {
  return consentAct(event, consentId, "ConsentRevocation", "sign.revoke", "/v1/consents/revocations",
                    (outcome) => t("revoke.done", { id: consentNumber(consentId), state: outcome }));
}

// a consent a guardian gave in the patient's name becomes the patient's own word when they confirm it
function confirmConsent(event, consentId) {
  return consentAct(event, consentId, "ConsentConfirmation", "sign.confirm_consent", "/v1/consents/confirmations",
                    (outcome) => outcome);
}

async function loadHistory() {
  if (state.records === null) {
    try { state.records = (await api(`/v1/patients/${state.address}/overview/records`)).records; }
    catch { state.records = []; }
  }
  const categories = Object.fromEntries(state.records.map((r) => [r.id, r.category]));
  const view = await api(`/v1/patients/${state.address}/overview/access-log`);
  partialNotice("history", view.members);
  $("timeline").replaceChildren(...view.timeline.map((entry) => {
    const glass = entry.basis === "break_glass";
    const names = { requester: memberName(entry.requester, entry.requester_name),
                    custodian: memberName(entry.logged_by, entry.logged_by_name), version: entry.record_version,
                    category: entry.record_id in categories ? categoryLabel(categories[entry.record_id]) : t("unknown") };
    const headline = t(`history.${entry.action}`, names);
    const item = el("li", { class: glass ? "break-glass" : "", "data-basis": entry.basis, "data-sequence": String(entry.sequence) },
      el("p", { class: "when" }, el("time", { datetime: entry.created_at, text: when(entry.created_at) })),
      el("p", {}, el("strong", { text: headline })));
    if (entry.clinician && entry.clinician !== "-") item.append(el("p", { text: t("history.clinician", { clinician: entry.clinician }) }));
    if (entry.action === "read") item.append(el("p", { text: t("history.purpose", { purpose: purposeLabel(entry.purpose) }) }));
    if (glass) {
      item.append(el("p", {}, el("strong", { class: "flag", text: t("history.break_glass") }), " ",
                     badge(entry.review || "pending", t(`review.${entry.review || "pending"}`))));
    } else if (entry.basis === "consent") {
      item.append(el("p", { text: t("history.consent", { id: consentNumber(entry.authorization.startsWith("0x") ? entry.authorization : "0x" + entry.authorization) }) }));
    } else if (entry.basis === "patient") {
      const byDelegate = entry.requester.toLowerCase() !== state.address.toLowerCase();
      item.append(el("p", { text: byDelegate ? t("history.by_delegate", { delegate: entry.requester }) : t("history.by_patient") }));
    } else {
      item.append(el("p", { text: t("history.custodian") }));
    }
    return item;
  }));
  $("history-empty").hidden = view.timeline.length > 0;
  await loadAccountChanges();
}

// who granted, revoked, appointed and restricted: the patient, or a guardian in their name
async function loadAccountChanges() {
  const changes = await api(`/v1/patients/${state.address}/account-history`);
  $("account-changes").replaceChildren(...changes.map((change) => {
    let headline;
    if (change.kind === "grant" || change.kind === "revocation") headline = t(`change.${change.kind}`, { id: consentNumber(change.consent_id) });
    else if (change.kind === "delegate" && change.delegate) headline = t("change.delegate", { delegate: change.delegate.delegate, scope: t(`delegates.scope_${change.delegate.scope}`) });
    else if (change.kind === "delegate") headline = t("change.delegate_removed", { delegate: change.delegate_removed });
    else headline = t(change.restricted ? "change.restricted" : "change.unrestricted");
    return el("li", { "data-kind": change.kind, "data-by": change.by },
      el("p", { class: "when" }, el("time", { datetime: new Date(change.at * 1000).toISOString(), text: when(change.at) })),
      el("p", {}, el("strong", { text: headline })),
      el("p", { text: change.by === "patient" ? t("change.by_you") : t("change.by_delegate", { delegate: change.signer }) }));
  }));
  $("changes-empty").hidden = changes.length > 0;
}

// a delegate's scope as the chain numbers it (DelegateChange.scope)
const SCOPES = { none: 0, view: 1, manage: 2 };

// the accounts the signed-in patient looks after as guardian: acting for one shows its screens and signs for
// it with the guardian's own key (the chain and every node check the guardian's scope at each use)
async function loadCaring() {
  const mine = await api("/v1/delegations");
  $("caring-list").replaceChildren(...mine.map((d) => el("li", { "data-patient": d.patient, "data-scope": d.scope },
    el("span", { class: "mono", text: d.patient }), " ", badge(d.scope, t(`delegates.scope_${d.scope}`)),
    d.minor_until ? el("span", { class: "muted", text: ` — ${t("caring.minor_until", { date: day(Date.parse(d.minor_until) / 1000) })}` }) : "",
    " ",
    el("button", { type: "button", "data-action": "act-for", "aria-label": `${t("caring.act")} ${d.patient}`,
                   text: t("caring.act"), onclick: () => actFor(d) }))));
  $("caring-empty").hidden = mine.length > 0;
}

function actFor(delegation) {
  state.address = ethers.getAddress(delegation.patient);
  state.acting = delegation;
  state.records = null;
  showActing();
  location.hash = "#records";
  route();
}

function backToOwn() {
  state.address = state.own;
  state.acting = null;
  state.records = null;
  showActing();
  route();
}

function showActing() {
  const acting = state.acting && state.address !== state.own;
  $("acting").hidden = !acting;
  if (acting) {
    $("acting-words").textContent = t("caring.acting", { account: state.address,
                                                        scope: t(`delegates.scope_${state.acting.scope}`) });
  }
}

async function loadDelegates() {
  fillDelegateForm();
  const own = state.address === state.own;  // a guardian acting for someone sees their guardians, changes none
  $("delegate-form").hidden = !own;
  for (const id of ["caring-h", "caring-list"]) $(id).hidden = !own;
  if (own) await loadCaring();
  else $("caring-empty").hidden = true;
  const view = await api(`/v1/patients/${state.address}/delegates`);
  $("delegates-list").replaceChildren(...view.delegates.map((d) => el("li", { "data-delegate": d.delegate, "data-scope": d.scope },
    el("span", { class: "mono", text: d.delegate }), " ",
    badge(d.scope, t(`delegates.scope_${d.scope}`)), " ",
    el("span", { text: d.valid_until ? t("delegates.until_on", { date: day(d.valid_until) }) : t("delegates.until_open") }),
    d.excluded_categories ? el("span", { class: "muted", text: ` — ${t("delegates.kept", { categories: labels(config.categories, d.excluded_categories) })}` }) : "",
    " ",
    state.address !== state.own ? "" : el("button", { type: "button", class: "secondary", text: t("delegates.edit"), "data-action": "edit",
                   "aria-label": `${t("delegates.edit")} ${d.delegate}`, onclick: () => editDelegate(d) }), " ",
    state.address !== state.own ? "" : el("button", { type: "button", class: "secondary", text: t("delegates.remove"), "data-action": "remove",
                   "aria-label": `${t("delegates.remove")} ${d.delegate}`,
                   onclick: (e) => changeDelegate(e.currentTarget, { delegate: d.delegate, scope: "none", validUntil: 0, excluded: 0 }) }))));
  $("delegates-empty").hidden = view.delegates.length > 0;
}

function fillDelegateForm() {
  if ($("delegate-excluded").childElementCount) return;
  $("delegate-excluded").replaceChildren(...config.categories.map((item) => el("div", {},
    el("input", { type: "checkbox", id: `excluded-${item.name}`, name: "excluded", value: String(item.bit) }),
    " ", el("label", { for: `excluded-${item.name}`, text: item.label }))));
  $("delegate-until").min = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
}

// the form edits an appointed delegate: their account is fixed, their terms are filled in
function editDelegate(d) {
  $("delegate-address").value = d.delegate;
  $("delegate-address").readOnly = true;
  $(`delegate-scope-${d.scope}`).checked = true;
  $("delegate-until").value = d.valid_until ? new Date(d.valid_until * 1000).toISOString().slice(0, 10) : "";
  for (const box of document.querySelectorAll("input[name=excluded]")) box.checked = (d.excluded_categories >> Number(box.value)) & 1;
  $("delegate-submit").textContent = t("delegates.save");
  $("delegate-cancel").hidden = false;
  $("delegate-address").focus();
}

function resetDelegateForm() {
  $("delegate-form").reset();
  $("delegate-address").readOnly = false;
  $("delegate-submit").textContent = t("delegates.appoint");
  $("delegate-cancel").hidden = true;
}

function delegateWords(terms) {
  if (terms.scope === "none") return t("sign.delegate_off", { delegate: terms.delegate });
  return t("sign.delegate_on", {
    delegate: terms.delegate,
    scope: t(`sign.delegate_${terms.scope}`),
    until: terms.validUntil ? t("sign.delegate_until", { date: when(terms.validUntil) }) : t("sign.delegate_open"),
    excluded: terms.excluded ? t("sign.delegate_excluded", { categories: labels(config.categories, terms.excluded) })
                             : t("sign.delegate_nothing_excluded"),
  });
}

async function changeDelegate(button, terms) {
  await guarded(button, async () => {
    const domainInfo = await signingDomain();
    const now = Math.floor(Date.now() / 1000);
    const message = { patient: state.address, delegate: terms.delegate, scope: SCOPES[terms.scope],
                      validUntil: terms.validUntil, excludedCategories: terms.excluded, nonce: domainInfo.nonce,
                      deadline: now + SIGNATURE_VALIDITY_S };
    if (!(await confirmSignature(delegateWords(terms), "DelegateChange", message, domainInfo))) return status("");
    const signature = await signTyped("DelegateChange", message, domainInfo);
    const relay = await api("/v1/delegates", { method: "POST", body: {
      patient: state.address, delegate: terms.delegate, scope: terms.scope, valid_until: terms.validUntil,
      excluded_categories: terms.excluded, nonce: message.nonce, deadline: message.deadline, signature } });
    const outcome = await awaitRelay(relay);
    resetDelegateForm();
    await loadDelegates();
    status(outcome);
  });
}

function appointDelegate(event) {
  event.preventDefault();
  const value = $("delegate-address").value.trim();
  if (!ethers.isAddress(value)) return showError(t("delegates.bad_address"));
  let validUntil = 0;
  if ($("delegate-until").value) {
    const [year, month, date] = $("delegate-until").value.split("-").map(Number);
    validUntil = Math.floor(new Date(year, month - 1, date, 23, 59, 59).getTime() / 1000);
    if (validUntil <= Math.floor(Date.now() / 1000)) return showError(t("delegates.need_future"));
  }
  const scope = document.querySelector("input[name=delegate-scope]:checked").value;
  changeDelegate(event.submitter, { delegate: ethers.getAddress(value), scope, validUntil, excluded: checkedBits("excluded") });
}

async function loadAccount() {
  $("account-address").textContent = state.address;
  $("account-key").textContent = state.key;
  $("rotate-make").hidden = state.kind !== "local";
  const mineToMove = state.address === state.own;  // a guardian acting for someone sees its key, moves nothing
  for (const id of ["rotate-form", "recover-h", "recover-intro", "recover-key", "claim-h", "claim-intro", "claim-form"]) {
    $(id).hidden = !mineToMove;
  }
  $("rotate-passphrase-row").hidden = true;
  const [own, mine] = await Promise.all([
    api(`/v1/patients/${state.address}/succession`),
    api("/v1/recoveries/mine").catch(() => null),  // 404: this key is not being recovered into an account
  ]);
  const pending = own.recovery.new_key;
  $("recovery-pending").hidden = !pending;
  if (pending) {
    $("recovery-words").textContent = t("recovery.pending", { key: pending, approvals: own.recovery.approvals,
      threshold: own.recovery.threshold,
      when: own.recovery.ready_at ? when(own.recovery.ready_at) : t("recovery.not_started") });
  }
  $("recovering").hidden = !mine || !mineToMove;
  if (mine) {
    const ready = mine.recovery.ready_at && mine.recovery.ready_at * 1000 <= Date.now();
    $("recovering-words").textContent = t("recovering.status", { account: mine.account,
      approvals: mine.recovery.approvals, threshold: mine.recovery.threshold,
      when: mine.recovery.ready_at ? when(mine.recovery.ready_at) : t("recovery.not_started") });
    $("recovering-complete").disabled = !ready;
    $("recovering-complete").dataset.account = mine.account;
  }
  $("recover-key").textContent = state.key;
  $("account-kind").textContent = t(state.kind === "wallet" ? "account.kind_wallet" : "account.kind_local");
  $("account-backup").hidden = state.kind !== "local" || !storedKeystore();
}

// a planned move to a new key: the current key signs it; a key made here is kept (encrypted) in this browser
async function makeNewKey() {
  state.nextWallet = ethers.Wallet.createRandom();
  $("rotate-new-key").value = state.nextWallet.address;
  $("rotate-new-key").readOnly = true;
  $("rotate-passphrase-row").hidden = false;
}

async function rotateKey(event) {
  event.preventDefault();
  const value = $("rotate-new-key").value.trim();
  if (!ethers.isAddress(value)) return showError(t("delegates.bad_address"));
  const newKey = ethers.getAddress(value);
  const made = state.nextWallet && state.nextWallet.address === newKey ? state.nextWallet : null;
  const passphrase = $("rotate-passphrase").value;
  if (made && passphrase.length < 10) return showError(t("create.short"));
  await guarded(event.submitter, async () => {
    const domainInfo = await signingDomain();
    const now = Math.floor(Date.now() / 1000);
    const message = { account: state.address, newKey, nonce: domainInfo.nonce, deadline: now + SIGNATURE_VALIDITY_S };
    if (!(await confirmSignature(t("sign.rotate", { key: newKey }), "KeyRotation", message, domainInfo))) return status("");
    const signature = await signTyped("KeyRotation", message, domainInfo);
    await api(`/v1/patients/${state.address}/key-rotation`, { method: "POST", body: {
      new_key: newKey, nonce: message.nonce, deadline: message.deadline, signature } });
    $("rotate-form").reset();
    if (!made) {  // a key held elsewhere (another wallet account): sign in with it
      status(t("rotate.done_elsewhere"));
      signedOut();
      return;
    }
    localStorage.setItem(KEYSTORE_KEY, await made.encrypt(passphrase));
    state.nextWallet = null;
    useSigner(made, "local");
    downloadBackup();  // the old backup opens nothing any more: keep this one
    await signIn();
    status(t("rotate.done"));
  });
}

// a child, of age, claims the account their guardian held: this key signs the claim, shown as a code for the
// desk of a hospital (which checks who the child is and sends it to the chain)
async function claimChildAccount(event) {
  event.preventDefault();
  const value = $("claim-account").value.trim();
  if (!ethers.isAddress(value)) return showError(t("delegates.bad_address"));
  const guardianScope = document.querySelector("input[name=claim-scope]:checked").value;
  await guarded(event.submitter, async () => {
    const domainInfo = await signingDomain();
    const deadline = Math.floor(Date.now() / 1000) + CLAIM_VALIDITY_S;
    const message = { account: ethers.getAddress(value), key: state.key, guardianScope: SCOPES[guardianScope], deadline };
    const words = t("sign.claim", { account: message.account, scope: t(`claim.scope_${guardianScope}`) });
    if (!(await confirmSignature(words, "MinorClaim", message, domainInfo))) return status("");
    const signature = await signTyped("MinorClaim", message, domainInfo);
    const claim = { account: message.account, key: message.key, guardian_scope: guardianScope, deadline, signature };
    wf.drawCode(JSON.stringify(claim), "claim-qr");
    $("claim-expiry").textContent = t("hospitals.valid_until", { time: when(deadline) });
    $("claim-code").hidden = false;
  });
}

async function cancelRecovery(event) {
  await guarded(event.currentTarget, async () => {
    const own = await api(`/v1/patients/${state.address}/succession`);
    const domainInfo = await signingDomain();
    const now = Math.floor(Date.now() / 1000);
    const message = { account: state.address, newKey: own.recovery.new_key, nonce: domainInfo.nonce,
                      deadline: now + SIGNATURE_VALIDITY_S };
    if (!(await confirmSignature(t("sign.cancel_recovery", { key: message.newKey }), "RecoveryCancellation", message,
                                 domainInfo))) return status("");
    const signature = await signTyped("RecoveryCancellation", message, domainInfo);
    await api(`/v1/patients/${state.address}/recovery/cancellation`, { method: "POST", body: {
      new_key: message.newKey, nonce: message.nonce, deadline: message.deadline, signature } });
    await loadAccount();
    status(t("recovery.cancelled"));
  });
}

async function completeRecovery(event) {
  const account = event.currentTarget.dataset.account;
  await guarded(event.currentTarget, async () => {
    await api(`/v1/patients/${account}/recovery/completion`, { method: "POST" });
    await signIn();  // the same key now signs for the recovered account
    status(t("recovering.done"));
  });
}

// ------------------------------------------------------------------------------------------ start

function start() {
  if (!window.crypto?.getRandomValues) return showError(t("error.no_crypto"));
  $("create-form").addEventListener("submit", createAccount);
  $("unlock-form").addEventListener("submit", unlockAccount);
  $("import-form").addEventListener("submit", importAccount);
  $("wallet-connect").addEventListener("click", connectWallet);
  $("forget").addEventListener("click", () => {
    if (window.confirm(t("unlock.forget_confirm"))) { localStorage.removeItem(KEYSTORE_KEY); prepareWelcome(); }
  });
  $("backup-download").addEventListener("click", () => { downloadBackup(); });
  $("backup-saved").addEventListener("change", (e) => { $("backup-continue").disabled = !e.target.checked; });
  $("backup-continue").addEventListener("click", (e) => guarded(e.currentTarget, signIn));
  $("account-backup").addEventListener("click", downloadBackup);
  $("signout").addEventListener("click", signOut);
  $("grant-form").addEventListener("submit", grant);
  $("delegate-form").addEventListener("submit", appointDelegate);
  $("delegate-cancel").addEventListener("click", resetDelegateForm);
  $("acting-back").addEventListener("click", backToOwn);
  $("rotate-form").addEventListener("submit", rotateKey);
  $("claim-form").addEventListener("submit", claimChildAccount);
  $("rotate-make").addEventListener("click", makeNewKey);
  $("recovery-cancel").addEventListener("click", cancelRecovery);
  $("recovering-complete").addEventListener("click", completeRecovery);
  $("export-all").addEventListener("click", exportAll);
  $("restrict-all").addEventListener("click", (e) => restrictAll(e, true));
  $("lift-all").addEventListener("click", (e) => restrictAll(e, false));
  $("view-close").addEventListener("click", closeViewer);
  $("view-dialog").addEventListener("close", closeViewer);
  window.addEventListener("hashchange", route);
  prepareWelcome();
  show("welcome");
  document.body.dataset.ready = "true";
}

start();
