// An outside integrator's consent relay, with ethers only: reads the signing domain over a signed request,
// has the patient sign the EIP-712 grant (ethers' 65-byte hex signature), relays it with the JS request
// signer and prints {status, body} as JSON. Used by tests/api/test_request_signature.py. The privacy notice
// shown is read from the node and its SHA-256 recomputed here from the text (canonical JSON of en, version, zh).
//   node tests/js/relay_grant.mjs '{"url":..., "chainId":..., "audience":..., "memberKey":..., "patientKey":..., "grantee":...}'
import { Wallet, sha256, toUtf8Bytes } from "ethers";
import { signedFetch } from "../../clients/js/medledger-signer.mjs";

const args = JSON.parse(process.argv[2]);
const member = new Wallet(args.memberKey);
const patient = new Wallet(args.patientKey);
const call = signedFetch(member, { chainId: args.chainId, audience: args.audience });

const domainAnswer = await call(`${args.url}/v1/patients/${patient.address}/signing-domain`);
const signing = await domainAnswer.json();
const notice = await (await fetch(`${args.url}/v1/privacy-notice`)).json();
const noticeHash = sha256(toUtf8Bytes(JSON.stringify({ en: notice.text.en, version: notice.version, zh: notice.text.zh })));
if (noticeHash.slice(2) !== notice.sha256) throw new Error(`the notice's hash is not its text's: ${noticeHash}`);
const now = Math.floor(Date.now() / 1000);
const message = { patient: patient.address, grantees: [args.grantee], categories: args.categories ?? 2, purposes: 1,
  validFrom: now - 60, validUntil: now + 86400, careFrom: 0, careTo: 0, noticeVersion: notice.version, noticeHash,
  nonce: signing.nonce, deadline: BigInt(args.deadline ?? now + 600) };
const domain = { name: "MedLedger Consent", version: "1", chainId: signing.chain_id,
  verifyingContract: signing.verifying_contract };
const types = { ConsentGrant: [
  { name: "patient", type: "address" }, { name: "grantees", type: "address[]" }, { name: "categories", type: "uint16" },
  { name: "purposes", type: "uint8" }, { name: "validFrom", type: "uint32" }, { name: "validUntil", type: "uint32" },
  { name: "careFrom", type: "uint16" }, { name: "careTo", type: "uint16" }, { name: "noticeVersion", type: "uint16" },
  { name: "noticeHash", type: "bytes32" }, { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" }] };
const signature = await patient.signTypedData(domain, types, message);
const body = JSON.stringify({ patient: message.patient, grantees: message.grantees, categories: message.categories,
  purposes: message.purposes, valid_from: message.validFrom, valid_until: message.validUntil,
  notice_version: notice.version, notice_hash: notice.sha256, nonce: message.nonce,
  deadline: message.deadline.toString(), signature });  // uint256 as a decimal string: JSON numbers lose precision
const relay = await call(`${args.url}/v1/consents`, { method: "POST", body,
  headers: { "content-type": "application/json" } });
console.log(JSON.stringify({ domain_status: domainAnswer.status, status: relay.status, body: await relay.json() }));
