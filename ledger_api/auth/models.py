"""Replay protection for signed requests, Sign-In with Ethereum nonces and patient sessions.

Session tokens are stored only as SHA-256 hashes: a database leak yields no usable token.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class SeenRequestNonce(SQLModel, table=True):
    """A signed request's nonce, kept until it can no longer pass the freshness window."""

    __tablename__ = "seen_request_nonces"
    key: str = Field(primary_key=True, max_length=200)  # signer:nonce
    expires_at: datetime = Field(index=True)


class SiweChallenge(SQLModel, table=True):
    __tablename__ = "siwe_challenges"
    nonce: str = Field(primary_key=True, max_length=64)
    expires_at: datetime
    used: bool = False


class PatientSession(SQLModel, table=True):
    __tablename__ = "patient_sessions"
    token_hash: str = Field(primary_key=True, max_length=64)
    patient: str = Field(index=True, max_length=42)
    created_at: datetime
    expires_at: datetime
    #: the key that signed in, when it signs for another account than its own address (after a key rotation
    #: or recovery): the session lasts only while that key still signs for the account
    signing_key: str | None = Field(default=None, max_length=42)
    #: the signed sign-in message and its signature, kept only while the session lives: when the
    #: message grants the consortium-view resource, this node shows it to the other members as
    #: the patient's proof (see ``auth.patient_proof``), so one sign-in covers the whole consortium
    sign_in_message: str | None = Field(default=None, max_length=4000)
    sign_in_signature: str | None = Field(default=None, max_length=132)


class EndedProof(SQLModel, table=True):
    """A patient's consortium-view proof whose session ended (sign-out at the member that presented it).

    Kept until the proof would have expired anyway; a proof listed here is refused when presented.
    """

    __tablename__ = "ended_patient_proofs"
    digest: str = Field(primary_key=True, max_length=64)  # SHA-256 of the signed sign-in message
    expires_at: datetime = Field(index=True)
