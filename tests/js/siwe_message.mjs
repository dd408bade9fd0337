// A sign-in message built by the reference EIP-4361 library (npm `siwe`), signed with ethers; prints
// {message, signature}. Optional fields are present only when given. Used by tests/api/test_siwe_grammar.py.
import { Wallet } from "ethers";
import { SiweMessage } from "siwe";

const args = JSON.parse(process.argv[2]);
const wallet = new Wallet(args.key);
const fields = { domain: args.domain, address: wallet.address, uri: args.uri, version: "1", chainId: args.chainId,
  nonce: args.nonce, issuedAt: new Date().toISOString() };
for (const name of ["scheme", "statement", "expirationTime", "notBefore", "requestId", "resources"]) {
  if (args[name] !== undefined) fields[name] = args[name];
}
const message = new SiweMessage(fields).prepareMessage();
console.log(JSON.stringify({ message, signature: await wallet.signMessage(message) }));
