// A client generated from the node's OpenAPI document (openapi-typescript types + openapi-fetch), signing
// every request with the JavaScript signer. Compiled with tsc (strict) by tests/api/test_openapi_document.py:
// a path or parameter the document does not declare would not compile.
import createClient, { type Middleware } from "openapi-fetch";
import { Wallet } from "ethers";
import type { paths } from "./api.js";
// @ts-ignore - plain JavaScript module, no type declarations
import { signRequest } from "../../clients/js/medledger-signer.mjs";

const [url, chainId, audience, key, patient] = process.argv.slice(2);
const wallet = new Wallet(key);

const signing: Middleware = {
  async onRequest({ request }) {
    const body = new Uint8Array(await request.clone().arrayBuffer());
    const headers: Record<string, string> = await signRequest(wallet, { chainId: Number(chainId), audience,
      method: request.method, url: request.url, body });
    for (const [name, value] of Object.entries(headers)) request.headers.set(name, value);
    return request;
  },
};

const client = createClient<paths>({ baseUrl: url });
client.use(signing);
const members = await client.GET("/v1/consortium/members");
const domain = await client.GET("/v1/patients/{patient}/signing-domain", { params: { path: { patient } } });
const refused = await client.GET("/v1/records/{record_id}", { params: { path: { record_id: "00".repeat(32) } } });
console.log(JSON.stringify({ members: members.data, domain: domain.data, refused: refused.error,
  refusedStatus: refused.response.status, refusedType: refused.response.headers.get("content-type") }));
