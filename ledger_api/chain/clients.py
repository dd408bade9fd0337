"""One typed client per contract. Reads are ``eth_call`` methods returning models; writes sign a
transaction with the client's ``TransactionSender`` and return its ``Receipt``.

Reverts surface as ``ContractReverted`` carrying the Solidity error name and arguments; an
unreachable node as ``ChainUnavailable``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from typing import Any, ClassVar, Self

from eth_utils import function_signature_to_4byte_selector
from pydantic import BaseModel, ConfigDict
from web3 import Web3
from web3.providers.rpc import HTTPProvider

from ledger_api.chain.artifacts import load_artifact
from ledger_api.chain.calldata import checksum_address, decode_results, encode_arguments
from ledger_api.chain.defaults import ANY_MEMBER  # noqa: F401 - re-exported
from ledger_api.chain.reverts import decode_revert
from ledger_api.chain.rpc import JsonRpcReader
from ledger_api.chain.transactions import Receipt, TransactionSender, chain_call
from ledger_api.errors import TransactionFailed

# --------------------------------------------------------------------------- enums (as on chain)


class Role(IntEnum):
    NONE = 0
    MEMBER = 1
    AUDITOR = 2


class MemberStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2
    REMOVED = 3


class ProposalKind(IntEnum):
    ADD_MEMBER = 0
    SUSPEND_MEMBER = 1
    REINSTATE_MEMBER = 2
    REMOVE_MEMBER = 3
    UPDATE_MEMBER_KEYS = 4


class ProposalState(IntEnum):
    NONE = 0
    PENDING = 1
    APPROVED = 2
    DEFEATED = 3
    EXPIRED = 4
    EXECUTED = 5


class ConsentState(IntEnum):
    NONE = 0
    ACTIVE = 1
    REVOKED = 2


class Review(IntEnum):
    PENDING = 0
    JUSTIFIED = 1
    NOT_JUSTIFIED = 2


class Basis(IntEnum):
    NONE = 0
    CONSENT = 1
    BREAK_GLASS = 2
    CUSTODIAN = 3


# --------------------------------------------------------------------------- models


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Member(_Model):
    """A consortium member as the registry holds it."""

    account: str
    index: int
    role: Role
    status: MemberStatus
    key_version: int
    joined_at: int
    name: str
    endpoint: str
    hpke_public_key: bytes


class GenesisMember(_Model):
    """A founding member, fixed at deployment."""

    account: str
    role: Role
    name: str
    endpoint: str
    hpke_public_key: bytes


class Proposal(_Model):
    kind: ProposalKind
    target: str
    proposer: str
    created_at: int
    expires_at: int
    approvals: int
    rejections: int
    executed: bool
    payload: bytes


class Consent(_Model):
    """A consent as stored (expiry is derived from ``valid_until``, not stored)."""

    consent_id: int
    patient: str
    grantee: str
    categories: int
    purposes: int
    state: ConsentState
    valid_from: int
    valid_until: int


class GrantTerms(_Model):
    """What a patient grants; ``grantee`` = ``ANY_MEMBER`` for every active member."""

    grantee: str
    categories: int
    purposes: int
    valid_from: int
    valid_until: int

    def as_tuple(self) -> tuple[str, int, int, int, int]:
        return (self.grantee, self.categories, self.purposes, self.valid_from, self.valid_until)


class BreakGlass(_Model):
    break_glass_id: int
    member: str
    declared_at: int
    expires_at: int
    reason_code: int
    review: Review
    patient: str
    justification_hash: bytes
    review_reason_hash: bytes


class RecordInfo(_Model):
    patient: str
    custodian: str
    category: int
    latest_version: int


# --------------------------------------------------------------------------- base


class ContractClient:
    """Common plumbing: the contract object, reads with decoded reverts, signed writes."""

    contract_name: ClassVar[str]

    def __init__(self, w3: Web3, address: str, sender: TransactionSender | None = None) -> None:
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.sender = sender
        self.contract = w3.eth.contract(address=self.address, abi=load_artifact(self.contract_name).abi)
        self._rpc = reader_for(w3)

    def with_sender(self, sender: TransactionSender) -> Self:
        """The same contract, writing as another account."""
        return type(self)(self.w3, self.address, sender)

    def _read(self, function: str, *args: Any, block: int | str = "latest") -> Any:
        """One ``eth_call`` with calldata encoded from cached ABI types and outputs decoded directly.

        Why not ``contract.functions.f().call()``: building a contract function per call (ABI
        lookup, argument matching, validation) costs milliseconds, and reads are on every
        request's hot path (authorisation reads the chain each time); see ``chain.calldata``.
        Reverts decode as before.
        """
        spec, data = self._calldata(function, args)
        if self._rpc is not None:  # production and anvil: one plain JSON-RPC request
            raw = self._raw_call(self._rpc, data, block)
        else:  # the in-process eth-tester takes web3's request formatting
            raw = chain_call(self.w3.eth.call, {"to": self.address, "data": data}, block, contract=self.contract_name)
        return _returned(spec, bytes(raw))

    def _calldata(self, function: str, args: tuple[Any, ...]) -> tuple[_FunctionSpec, bytes]:
        spec = _function_spec(self.contract_name, function)
        return spec, spec.selector + encode_arguments(spec.inputs, args)

    def head_block(self) -> int:
        """The chain's latest block number (authorisation is read at one named block and logged with it)."""
        if self._rpc is not None:
            return _block_number(self._rpc.request("eth_blockNumber", []))
        return int(chain_call(lambda: self.w3.eth.block_number))

    def _read_with_head(self, function: str, *args: Any) -> tuple[Any, int]:
        """``_read`` at the latest block, and the latest block number, in one round trip (a JSON-RPC
        batch). Both are the chain's state at the moment of asking, but a block mined between the
        two answers would put them one block apart: for checks that must be current, not for values
        that must belong to exactly that block (those take ``block=``)."""
        if self._rpc is None:
            block = self.head_block()
            return self._read(function, *args), block
        spec, data = self._calldata(function, args)
        head, call = self._rpc.batch(
            [("eth_blockNumber", []), ("eth_call", [{"to": self.address, "data": "0x" + data.hex()}, "latest"])]
        )
        return _returned(spec, self._call_result(call)), _block_number(head)

    def _raw_call(self, rpc: JsonRpcReader, data: bytes, block: int | str) -> bytes:
        block_id = hex(block) if isinstance(block, int) else block
        return self._call_result(rpc.request("eth_call", [{"to": self.address, "data": "0x" + data.hex()}, block_id]))

    def _call_result(self, response: dict[str, Any]) -> bytes:
        """An ``eth_call`` response's return data; a revert as its decoded ``ContractReverted``."""
        if "error" in response:
            error = response["error"]
            decoded = decode_revert(error.get("data"), self.contract_name) if isinstance(error, dict) else None
            if decoded is not None:
                raise decoded
            raise TransactionFailed(f"{self.contract_name} call failed: {error}")
        return bytes.fromhex(response["result"].removeprefix("0x"))

    def _write(self, function: str, *args: Any) -> Receipt:
        if self.sender is None:
            raise RuntimeError(f"{self.contract_name} client has no sender: it is read-only")
        fn = getattr(self.contract.functions, function)(*args)
        return self.sender.send(fn, contract=self.contract_name)


@dataclass(frozen=True)
class _FunctionSpec:
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        return f"({','.join(_abi_type(c) for c in param['components'])}){param['type'][len('tuple') :]}"
    return param["type"]


@cache
def _function_spec(contract: str, function: str) -> _FunctionSpec:
    (item,) = [i for i in load_artifact(contract).abi if i["type"] == "function" and i["name"] == function]
    inputs = [_abi_type(p) for p in item["inputs"]]
    selector = function_signature_to_4byte_selector(f"{function}({','.join(inputs)})")
    return _FunctionSpec(selector, tuple(inputs), tuple(_abi_type(p) for p in item["outputs"]))


def _returned(spec: _FunctionSpec, raw: bytes) -> Any:
    """A call's decoded return value: the value itself when the function returns one, else the tuple."""
    values = decode_results(spec.outputs, raw)
    return values[0] if len(values) == 1 else values


def _block_number(response: dict[str, Any]) -> int:
    if "result" not in response:
        raise TransactionFailed(f"eth_blockNumber failed: {response.get('error')}")
    return int(response["result"], 16)


def reader_for(w3: Web3) -> JsonRpcReader | None:
    """A lean reader for HTTP(S) chains (see ``chain.rpc``); None for the in-process eth-tester."""
    provider = w3.provider
    if not isinstance(provider, HTTPProvider) or provider.endpoint_uri is None:
        return None
    kwargs = provider.get_request_kwargs()
    timeout = kwargs.get("timeout", 10.0)
    return JsonRpcReader(
        str(provider.endpoint_uri),
        timeout=timeout if isinstance(timeout, int | float) else 10.0,
        headers={k: v for k, v in dict(kwargs.get("headers") or {}).items() if k != "User-Agent"},
    )


def _member(raw: Any) -> Member:
    account, index, role, status, key_version, joined_at, name, endpoint, key = raw
    return Member(
        account=account,
        index=index,
        role=Role(role),
        status=MemberStatus(status),
        key_version=key_version,
        joined_at=joined_at,
        name=name,
        endpoint=endpoint,
        hpke_public_key=bytes(key),
    )


# --------------------------------------------------------------------------- clients


class ConsortiumRegistryClient(ContractClient):
    contract_name = "ConsortiumRegistry"

    # reads
    def member(self, account: str) -> Member:
        return _member(self._read("member", checksum_address(account)))

    def member_and_head(self, account: str) -> tuple[Member, int]:
        """The member's current entry and the latest block number, in one round trip (a signed
        request's check; the block is where its authorisation is then read)."""
        raw, head = self._read_with_head("member", checksum_address(account))
        return _member(raw), head

    def member_at(self, index: int) -> Member:
        return _member(self._read("memberAt", index))

    def member_count(self) -> int:
        return int(self._read("memberCount"))

    def members(self) -> list[Member]:
        """Every member ever admitted, in admission order, with current status."""
        return [self.member_at(i) for i in range(self.member_count())]

    def is_active(self, account: str) -> bool:
        return bool(self._read("isActive", checksum_address(account)))

    def is_active_member(self, account: str) -> bool:
        return bool(self._read("isActiveMember", checksum_address(account)))

    def is_active_auditor(self, account: str) -> bool:
        return bool(self._read("isActiveAuditor", checksum_address(account)))

    def active_voter_count(self) -> int:
        return int(self._read("activeVoterCount"))

    def voting_period(self) -> int:
        return int(self._read("votingPeriod"))

    def proposal(self, proposal_id: int) -> Proposal:
        kind, target, proposer, created, expires, approvals, rejections, executed, payload = self._read(
            "proposal", proposal_id
        )
        return Proposal(
            kind=ProposalKind(kind),
            target=target,
            proposer=proposer,
            created_at=created,
            expires_at=expires,
            approvals=approvals,
            rejections=rejections,
            executed=executed,
            payload=bytes(payload),
        )

    def proposal_state(self, proposal_id: int) -> ProposalState:
        return ProposalState(self._read("proposalState", proposal_id))

    def proposal_tally(self, proposal_id: int) -> tuple[int, int, int, int]:
        """``(electorate, counted, approvals, rejections)``: see the electorate rule in ConsortiumRegistry."""
        electorate, counted, approvals, rejections = self._read("proposalTally", proposal_id)
        return int(electorate), int(counted), int(approvals), int(rejections)

    def proposal_count(self) -> int:
        return int(self._read("proposalCount"))

    def has_voted(self, proposal_id: int, voter: str) -> bool:
        return bool(self._read("hasVoted", proposal_id, checksum_address(voter)))

    def consumers(self) -> list[str]:
        return list(self._read("consumers"))

    # writes
    def bind_consumers(self, consumers: list[str]) -> Receipt:
        return self._write("bindConsumers", [checksum_address(c) for c in consumers])

    def propose_add_member(self, account: str, role: Role, name: str, endpoint: str, hpke_public_key: bytes) -> Receipt:
        return self._write("proposeAddMember", checksum_address(account), int(role), name, endpoint, hpke_public_key)

    def propose_status_change(self, kind: ProposalKind, account: str) -> Receipt:
        return self._write("proposeStatusChange", int(kind), checksum_address(account))

    def propose_key_update(self, account: str, endpoint: str, hpke_public_key: bytes) -> Receipt:
        return self._write("proposeKeyUpdate", checksum_address(account), endpoint, hpke_public_key)

    def vote(self, proposal_id: int, support: bool) -> Receipt:
        return self._write("vote", proposal_id, support)

    def execute(self, proposal_id: int) -> Receipt:
        return self._write("execute", proposal_id)


class ConsentRegistryClient(ContractClient):
    contract_name = "ConsentRegistry"

    # reads
    def consent(self, consent_id: int, *, block: int | str = "latest") -> Consent:
        grantee, categories, purposes, state, valid_from, valid_until = self._read("consent", consent_id, block=block)
        return Consent(
            consent_id=consent_id,
            patient=patient_of(consent_id),
            grantee=grantee,
            categories=categories,
            purposes=purposes,
            state=ConsentState(state),
            valid_from=valid_from,
            valid_until=valid_until,
        )

    def consent_count(self, patient: str) -> int:
        return int(self._read("consentCount", checksum_address(patient)))

    def consents_of(self, patient: str) -> list[Consent]:
        base = consent_id_base(patient)
        return [self.consent(base | i) for i in range(self.consent_count(patient))]

    def nonce(self, patient: str) -> int:
        return int(self._read("nonces", checksum_address(patient)))

    def is_delegate(self, patient: str, delegate: str) -> bool:
        return bool(self._read("isDelegate", checksum_address(patient), checksum_address(delegate)))

    def delegates_of(self, patient: str) -> list[str]:
        """The patient's current delegates, replayed from ``DelegateChanged`` (the contract keeps no list)."""
        events = chain_call(
            self.contract.events.DelegateChanged.get_logs,
            from_block=0,
            argument_filters={"patient": checksum_address(patient)},
            contract=self.contract_name,
        )
        current: dict[str, bool] = {}
        for event in sorted(events, key=lambda e: (e["blockNumber"], e["logIndex"])):
            current[event["args"]["delegate"]] = bool(event["args"]["appointed"])
        return [delegate for delegate, appointed in current.items() if appointed]

    def is_permitted(self, patient: str, requester: str, category: int, purpose: int) -> bool:
        return bool(
            self._read("isPermitted", checksum_address(patient), checksum_address(requester), category, purpose)
        )

    def permitting_consent(
        self, patient: str, requester: str, category: int, purpose: int, block: int | str = "latest"
    ) -> int | None:
        """The id of a consent that permits the access at ``block`` (default: now), or ``None``."""
        permitted, consent_id = self._read(
            "permittingConsent",
            checksum_address(patient),
            checksum_address(requester),
            category,
            purpose,
            block=block,
        )
        return int(consent_id) if permitted else None

    def break_glass(self, break_glass_id: int) -> BreakGlass:
        member, declared, expires, reason, review, patient, justification, review_reason = self._read(
            "breakGlass", break_glass_id
        )
        return BreakGlass(
            break_glass_id=break_glass_id,
            member=member,
            declared_at=declared,
            expires_at=expires,
            reason_code=reason,
            review=Review(review),
            patient=patient,
            justification_hash=bytes(justification),
            review_reason_hash=bytes(review_reason),
        )

    def break_glass_count(self) -> int:
        return int(self._read("breakGlassCount"))

    def emergency_access(self, patient: str, member: str, block: int | str = "latest") -> int | None:
        """The id of a break-glass declaration by ``member`` for ``patient`` unexpired at ``block``, or ``None``."""
        active, bg_id = self._read("emergencyAccess", checksum_address(patient), checksum_address(member), block=block)
        return int(bg_id) if active else None

    def break_glass_duration(self) -> int:
        return int(self._read("breakGlassDuration"))

    def break_glass_blocked(self, patient: str, member: str) -> bool:
        """Whether a not-justified review keeps ``member`` from declaring break-glass for ``patient``."""
        return bool(self._read("breakGlassBlocked", checksum_address(patient), checksum_address(member)))

    def break_glass_limit(self) -> tuple[int, int]:
        """``(declarations, window seconds)``: how many break-glass declarations a member may make per window."""
        limit, window = self._read("breakGlassLimit")
        return int(limit), int(window)

    def domain_separator(self) -> bytes:
        return bytes(self._read("DOMAIN_SEPARATOR"))

    # writes
    def grant(self, patient: str, terms: GrantTerms) -> Receipt:
        return self._write("grant", checksum_address(patient), terms.as_tuple())

    def grant_by_sig(
        self, patient: str, terms: GrantTerms, deadline: int, signature: tuple[int, bytes, bytes]
    ) -> Receipt:
        return self._write("grantBySig", checksum_address(patient), terms.as_tuple(), deadline, *signature)

    def revoke(self, consent_id: int) -> Receipt:
        return self._write("revoke", consent_id)

    def revoke_by_sig(self, consent_id: int, deadline: int, signature: tuple[int, bytes, bytes]) -> Receipt:
        return self._write("revokeBySig", consent_id, deadline, *signature)

    def set_delegate(self, delegate: str, appointed: bool) -> Receipt:
        return self._write("setDelegate", checksum_address(delegate), appointed)

    def set_delegate_by_sig(
        self, patient: str, delegate: str, appointed: bool, deadline: int, signature: tuple[int, bytes, bytes]
    ) -> Receipt:
        return self._write(
            "setDelegateBySig",
            checksum_address(patient),
            checksum_address(delegate),
            appointed,
            deadline,
            *signature,
        )

    def declare_break_glass(self, patient: str, reason_code: int, justification_hash: bytes) -> Receipt:
        return self._write("declareBreakGlass", checksum_address(patient), reason_code, justification_hash)

    def review_break_glass(self, break_glass_id: int, justified: bool, reason_hash: bytes) -> Receipt:
        return self._write("reviewBreakGlass", break_glass_id, justified, reason_hash)

    def lift_break_glass_block(self, patient: str, member: str) -> Receipt:
        return self._write("liftBreakGlassBlock", checksum_address(patient), checksum_address(member))


def mint_record_id(custodian: str) -> bytes:
    """A new record id, owned by ``custodian``: its account's 20 bytes, then 12 random bytes.

    The RecordRegistry lets only that member anchor version 1 of it (no member can take another's
    pending record id); 96 random bits per member keep ids from colliding.
    """
    return bytes.fromhex(checksum_address(custodian)[2:]) + os.urandom(12)


def record_id_minted_by(record_id: bytes) -> str:
    """The member that minted a record id (its first 20 bytes)."""
    return checksum_address("0x" + record_id[:20].hex())


class RecordRegistryClient(ContractClient):
    contract_name = "RecordRegistry"

    def record(self, record_id: bytes) -> RecordInfo:
        patient, custodian, category, latest = self._read("record", record_id)
        return RecordInfo(patient=patient, custodian=custodian, category=category, latest_version=latest)

    def content_hash(self, record_id: bytes, version: int) -> bytes:
        return bytes(self._read("contentHash", record_id, version))

    def exists(self, record_id: bytes) -> bool:
        return bool(self._read("exists", record_id))

    def anchor_record(self, record_id: bytes, patient: str, category: int, content_hash: bytes) -> Receipt:
        return self._write("anchorRecord", record_id, checksum_address(patient), category, content_hash)

    def anchor_version(self, record_id: bytes, version: int, content_hash: bytes) -> Receipt:
        return self._write("anchorVersion", record_id, version, content_hash)

    def transfer_custody(self, record_ids: list[bytes], successor: str) -> Receipt:
        return self._write("transferCustody", record_ids, checksum_address(successor))


class AccessTrailClient(ContractClient):
    contract_name = "AccessTrail"

    def last_sequence(self, member: str) -> int:
        return int(self._read("lastSequence", checksum_address(member)))

    def record_access(
        self,
        *,
        entry_hash: bytes,
        sequence: int,
        requester: str,
        patient: str,
        record_id: bytes,
        purpose: int,
        basis: Basis,
        authorization: bytes,
    ) -> Receipt:
        return self._write(
            "recordAccess",
            entry_hash,
            sequence,
            checksum_address(requester),
            checksum_address(patient),
            record_id,
            purpose,
            int(basis),
            authorization,
        )

    def anchor_batch(self, root: bytes, from_sequence: int, to_sequence: int) -> Receipt:
        return self._write("anchorAccessBatch", root, from_sequence, to_sequence)


# --------------------------------------------------------------------------- consent ids


def consent_id_base(patient: str) -> int:
    """Consent ids of ``patient`` are ``base | index``."""
    return int(checksum_address(patient), 16) << 96


def patient_of(consent_id: int) -> str:
    """The patient a consent id belongs to."""
    return checksum_address((consent_id >> 96).to_bytes(20, "big"))
