// An outside integrator's revocation relay, with ethers only: the patient signs the EIP-712 revocation of one
// consent against the deployed domain, the JS request signer relays it; prints {status, body} as JSON.
//   node tests/js/relay_revocation.mjs '{"url":..., "chainId":..., "audience":..., "memberKey":..., "patientKey":..., "consentId": "<decimal>"}'
import { Wallet } from "ethers";
import { signedFetch } from "../../clients/js/medledger-signer.mjs";

const args = JSON.parse(process.argv[2]);
const member = new Wallet(args.memberKey);
const patient = new Wallet(args.patientKey);
const call = signedFetch(member, { chainId: args.chainId, audience: args.audience });

const signing = await (await call(`${args.url}/v1/patients/${patient.address}/signing-domain`)).json();
const deadline = BigInt(Math.floor(Date.now() / 1000) + 600);
const message = { patient: patient.address, consentId: BigInt(args.consentId), nonce: signing.nonce, deadline };
const domain = { name: "MedLedger Consent", version: "1", chainId: signing.chain_id,
  verifyingContract: signing.verifying_contract };
const types = { ConsentRevocation: [{ name: "patient", type: "address" }, { name: "consentId", type: "uint256" },
  { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" }] };
const signature = await patient.signTypedData(domain, types, message);
const body = JSON.stringify({ consent_id: args.consentId, nonce: signing.nonce, deadline: deadline.toString(), signature });
const relay = await call(`${args.url}/v1/consents/revocations`, { method: "POST", body,
  headers: { "content-type": "application/json" } });
console.log(JSON.stringify({ status: relay.status, body: await relay.json() }));
