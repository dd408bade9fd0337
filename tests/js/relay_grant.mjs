// An outside integrator's consent relay, with ethers only: reads the signing domain over a signed request,
// has the patient sign the EIP-712 grant (ethers' 65-byte hex signature), relays it with the JS request
// signer and prints {status, body} as JSON. Used by tests/api/test_request_signature.py.
//   node tests/js/relay_grant.mjs '{"url":..., "chainId":..., "audience":..., "memberKey":..., "patientKey":..., "grantee":...}'
import { Wallet } from "ethers";
import { signedFetch } from "../../clients/js/medledger-signer.mjs";

const args = JSON.parse(process.argv[2]);
const member = new Wallet(args.memberKey);
const patient = new Wallet(args.patientKey);
const call = signedFetch(member, { chainId: args.chainId, audience: args.audience });

const domainAnswer = await call(`${args.url}/v1/patients/${patient.address}/signing-domain`);
const signing = await domainAnswer.json();
const now = Math.floor(Date.now() / 1000);
const message = { patient: patient.address, grantee: args.grantee, categories: args.categories ?? 2, purposes: 1,
  validFrom: now - 60, validUntil: now + 86400, nonce: signing.nonce, deadline: BigInt(args.deadline ?? now + 600) };
const domain = { name: "MedLedger Consent", version: "1", chainId: signing.chain_id,
  verifyingContract: signing.verifying_contract };
const types = { ConsentGrant: [
  { name: "patient", type: "address" }, { name: "grantee", type: "address" }, { name: "categories", type: "uint16" },
  { name: "purposes", type: "uint8" }, { name: "validFrom", type: "uint32" }, { name: "validUntil", type: "uint32" },
  { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" }] };
const signature = await patient.signTypedData(domain, types, message);
const body = JSON.stringify({ patient: message.patient, grantee: message.grantee, categories: message.categories,
  purposes: message.purposes, valid_from: message.validFrom, valid_until: message.validUntil, nonce: message.nonce,
  deadline: message.deadline.toString(), signature });  // uint256 as a decimal string: JSON numbers lose precision
const relay = await call(`${args.url}/v1/consents`, { method: "POST", body,
  headers: { "content-type": "application/json" } });
console.log(JSON.stringify({ domain_status: domainAnswer.status, status: relay.status, body: await relay.json() }));
