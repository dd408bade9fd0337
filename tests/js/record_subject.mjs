// An outside integrator opening a record anchor with ethers only: the subject commitment is the first 24
// bytes of the EIP-712 hashStruct of RecordSubject. Prints the hex for each case given.
//   node tests/js/record_subject.mjs '[{"recordId": "0x..", "patient": "0x..", "category": 3, "encounterDay": 20422, "salt": "0x.."}, ...]'
import { TypedDataEncoder, dataSlice } from "ethers";

const types = { RecordSubject: [
  { name: "recordId", type: "bytes32" }, { name: "patient", type: "address" },
  { name: "category", type: "uint16" }, { name: "encounterDay", type: "uint16" }, { name: "salt", type: "bytes32" }] };
const cases = JSON.parse(process.argv[2]);
console.log(JSON.stringify(cases.map((value) => dataSlice(TypedDataEncoder.hashStruct("RecordSubject", types, value), 0, 24))));
