"""The patient portal, end to end, in real headless Chromium against a running local consortium.

The story a patient lives through: create an account in the browser (backup first), sign in, see a
record held by A, grant B a consent after reading in words what is signed, see B's read in the
history, revoke, see B denied, see C's break-glass access flagged with its review state, appoint a
guardian, sign out and unlock again; then the same account imported from its backup on a phone in
Chinese. Hospitals act through their own signed API calls. Screenshots of each screen are saved.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import zxingcpp
from eth_account import Account
from fhir.resources.R4B.bundle import Bundle
from medledger_crypto import MemberIdentity, MinorClaim, recover_typed
from playwright.sync_api import Browser, BrowserContext, Page, expect

from ledger_api.chain.backends import RpcBackend, free_port
from ledger_api.chain.deployment import Consortium as Chain
from ledger_api.chain.deployment import DeploymentManifest
from ledger_api.chain.devnet import dev_passphrase
from ledger_api.cli.client import member_client
from ledger_api.records.export_archive import passed, verify_archive
from tests.utils.consents import grant_message, signed_grant_body
from tests.utils.consortium import Supervised
from tests.utils.enrolment import fresh_mrn, link_statement
from tests.utils.wallet import WALLET

#: every test uses the module's one running consortium: asked to stay on one worker (xdist's loadgroup)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("portal")]
PASSPHRASE = "correct horse battery staple"
WAIT = 45_000  # ms: scrypt in the browser and chain confirmations


class Consortium:
    """A running ``consortium up`` with the hospitals' own signed clients."""

    def __init__(self, data: Path) -> None:
        state = json.loads((data / "consortium.json").read_text())
        self.data = data
        self.nodes = state["nodes"]
        self.clients = {
            slug: member_client(
                node["url"], MemberIdentity.load(data / "chain" / "keys" / f"{slug}.json", dev_passphrase())
            )
            for slug, node in self.nodes.items()
        }

    def url(self, slug: str) -> str:
        return self.nodes[slug]["url"]

    def account(self, slug: str) -> str:
        return self.nodes[slug]["account"]

    def upload(
        self, slug: str, patient: str, category: str, body: bytes, media_type: str = "text/plain", **extra: str
    ) -> str:
        response = self.clients[slug].post(
            "/v1/records",
            params={"patient": patient, "category": category, "media_type": media_type, **extra},
            content=body,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def read(self, slug: str, record_id: str, custodian: str, clinician: str) -> httpx.Response:
        return self.clients[slug].get(
            f"/v1/consortium/records/{record_id}",
            params={"custodian": self.account(custodian), "purpose": "treatment", "clinician": clinician},
        )


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    data = tmp_path_factory.mktemp("portal-consortium")
    running = Supervised(data, free_port(), free_port(3), members=3)
    try:
        running.wait_for("press Ctrl-C")
        world = Consortium(data)
        yield world
        for client in world.clients.values():
            client.close()
    finally:
        running.stop()


def open_portal(browser: Browser, url: str, *, locale: str = "en-US", phone: bool = False) -> Page:
    context = browser.new_context(
        locale=locale,
        accept_downloads=True,
        viewport={"width": 390, "height": 844} if phone else {"width": 1280, "height": 900},
        extra_http_headers={"Accept-Language": locale},
    )
    context.set_default_timeout(WAIT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}/portal/")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    page.script_errors = errors  # type: ignore[attr-defined]
    return page


def wallet_page(
    browser: Browser,
    consortium: Consortium,
    portal: str,
    holder,
    *,
    screen: str = "desktop-en",
    bypass_csp: bool = False,
) -> tuple[BrowserContext, Page, list[str]]:
    """A browser whose wallet holds ``holder``'s key, on a phone in Chinese or a desktop in English, not yet
    at any page; and the list its page's script errors go to. ``bypass_csp``: let axe-core be injected."""
    phone = screen == "phone-zh"
    locale = "zh-CN" if phone else "en-US"
    chain_id = httpx.post(f"{consortium.url(portal)}/v1/auth/challenge", timeout=10).json()["chain_id"]
    context = browser.new_context(
        locale=locale,
        accept_downloads=True,
        bypass_csp=bypass_csp,
        viewport={"width": 390, "height": 844} if phone else {"width": 1280, "height": 900},
        extra_http_headers={"Accept-Language": locale},
    )
    context.set_default_timeout(WAIT)
    context.add_init_script(WALLET % (holder.key.hex(), chain_id, chain_id))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


def go(page: Page, section: str) -> None:
    page.locator(f'#nav a[data-section="{section}"]').click()
    expect(page.locator(f"#{section}")).to_be_visible()


def test_a_patient_controls_sharing_from_the_browser(browser: Browser, consortium: Consortium, artifacts: Path) -> None:
    page = open_portal(browser, consortium.url("dapeng"))
    expect(page.locator("h1")).to_have_text("MedLedger patient portal")
    expect(page.get_by_text("Served by Dapeng New District People's Hospital")).to_be_visible()
    page.screenshot(path=artifacts / "01-welcome.png", full_page=True)

    # --- create an account: the key is made and locked here; the backup comes before anything else
    page.get_by_label("Passphrase (at least 10 characters)").fill(PASSPHRASE)
    page.get_by_label("Repeat the passphrase").fill(PASSPHRASE)
    page.get_by_role("button", name="Create my account").click()
    expect(page.locator("#backup")).to_be_visible()
    patient = page.locator("#backup-address").inner_text().strip()
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", patient)
    expect(page.get_by_role("button", name="Continue")).to_be_disabled()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download backup file").click()
    backup = artifacts / "backup-keystore.json"
    download.value.save_as(backup)
    keystore = json.loads(backup.read_text())
    sealed = keystore.get("crypto") or keystore.get("Crypto")  # Web3 Secret Storage v3: scrypt + AES-128-CTR
    assert keystore["address"].lower() == patient[2:].lower() and sealed["kdf"] == "scrypt"
    assert "privateKey" not in backup.read_text() and PASSPHRASE not in backup.read_text()
    stored = page.evaluate("localStorage.getItem('medledger.keystore')")
    assert json.loads(stored)["address"] == keystore["address"]
    page.screenshot(path=artifacts / "02-backup.png", full_page=True)
    page.get_by_label("I have saved the backup file in a safe place").check()
    page.get_by_role("button", name="Continue").click()

    # --- signed in (EIP-4361): records across the consortium, empty for now
    expect(page.locator("#who-address")).to_have_text(f"Signed in as {patient}")
    expect(page.locator("#records")).to_be_visible()
    expect(page.locator("#records-empty")).to_be_visible()

    labs = consortium.upload("dapeng", patient, "labs", b"HbA1c 6.1 %; fasting glucose 5.9 mmol/L\n")
    consortium.upload("kuichong", patient, "immunizations", b"Hepatitis B, dose 3\n")
    go(page, "account")
    go(page, "records")
    rows = page.locator("#records-body tr")
    expect(rows).to_have_count(2)
    expect(page.locator(f'tr[data-record-id="{labs}"]')).to_contain_text("Laboratory results")
    expect(page.locator(f'tr[data-record-id="{labs}"]')).to_contain_text("Dapeng New District People's Hospital")
    expect(rows.filter(has_text="Immunizations")).to_contain_text("Kuichong Community Health Center")
    badge = page.locator(f'tr[data-record-id="{labs}"] td[data-label="On the ledger"] .badge')
    for _ in range(60):  # the node's outbox anchors the upload within a block or two; the screen shows it
        if badge.inner_text() == "anchored":
            break
        page.wait_for_timeout(500)
        go(page, "account")
        go(page, "records")
    expect(badge).to_have_text("anchored")
    expect(page.locator("#records [data-partial]")).to_be_hidden()
    page.screenshot(path=artifacts / "03-records.png", full_page=True)

    # --- B may not read yet
    assert consortium.read("kuichong", labs, "dapeng", "dr-kuichong-01").status_code == 403

    # --- grant B labs for treatment: the words shown are what is signed
    go(page, "consents")
    expect(page.locator("#consents-empty")).to_be_visible()
    page.get_by_label("Kuichong Community Health Center", exact=True).check()
    page.get_by_label("Laboratory results", exact=True).check()
    page.get_by_label("Treatment", exact=True).check()
    page.get_by_role("button", name="Review what I will sign").click()
    dialog = page.locator("#sign-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#sign-words")).to_contain_text(
        "I allow Kuichong Community Health Center to read my Laboratory results for Treatment"
    )
    expect(dialog.locator("#sign-words")).to_contain_text("It covers records of all days of care.")
    expect(dialog.locator("#sign-binding")).to_contain_text("signature number 0")
    notice = httpx.get(f"{consortium.url('dapeng')}/v1/privacy-notice", timeout=10).json()
    expect(dialog.locator("#sign-notice-text")).to_contain_text("MedLedger privacy notice (version 1)")
    expect(dialog.locator("#sign-notice-version")).to_contain_text(notice["sha256"][:16])
    raw = json.loads(dialog.locator("#sign-raw").text_content())
    assert raw["primaryType"] == "ConsentGrant" and raw["message"]["grantees"] == [consortium.account("kuichong")]
    assert (raw["message"]["noticeVersion"], raw["message"]["noticeHash"]) == (1, "0x" + notice["sha256"])
    assert raw["message"]["categories"] == 1 and raw["message"]["purposes"] == 1
    page.screenshot(path=artifacts / "04-sign-grant.png", full_page=True)
    page.get_by_role("button", name="Sign and send").click()
    expect(page.locator("#status")).to_have_text("on the ledger")
    active = page.locator('#consents-body tr[data-status="active"]')
    expect(active).to_have_count(1)
    expect(active).to_contain_text("Kuichong Community Health Center")
    page.screenshot(path=artifacts / "05-consents.png", full_page=True)

    # --- B reads; the patient sees it, with the clinician and the consent
    read = consortium.read("kuichong", labs, "dapeng", "dr-kuichong-01")
    assert read.status_code == 200 and read.content.startswith(b"HbA1c"), read.text
    go(page, "history")
    entry = page.locator('#timeline li[data-basis="consent"]')
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text(
        "Kuichong Community Health Center read a record (Laboratory results, version 1) "
        "held by Dapeng New District People's Hospital"
    )
    expect(entry).to_contain_text("dr-kuichong-01")
    expect(entry).to_contain_text("Purpose: Treatment")
    expect(entry).to_contain_text("Under consent #0")

    # --- revoke with one action: B is denied on the next request
    go(page, "consents")
    page.get_by_role("button", name="Revoke #0").click()
    expect(dialog.locator("#sign-words")).to_have_text("I revoke consent #0.")
    page.get_by_role("button", name="Sign and send").click()
    expect(page.locator("#status")).to_have_text("Revocation of consent #0: on the ledger.")
    expect(page.locator('#consents-body tr[data-status="revoked"]')).to_have_count(1)
    denied = consortium.read("kuichong", labs, "dapeng", "dr-kuichong-01")
    assert denied.status_code == 403 and denied.json()["code"] == "consent-denied", denied.text

    # --- C declares break-glass and reads: highlighted in the history, awaiting review
    emergency = consortium.clients["nanao"].post(
        "/v1/emergency",
        json={
            "patient": patient,
            "reason_code": 1,
            "justification": "unconscious on arrival, suspected hypoglycaemia",
            "clinician": "dr-nanao-er",
        },
    )
    assert emergency.status_code == 201, emergency.text
    assert consortium.read("nanao", labs, "dapeng", "dr-nanao-er").status_code == 200
    go(page, "records")
    go(page, "history")
    glass = page.locator('#timeline li[data-basis="break_glass"]')
    expect(glass).to_have_count(1)
    expect(glass).to_contain_text("Emergency access (break-glass)")
    expect(glass).to_contain_text("awaiting the auditor's review")
    expect(glass).to_contain_text("Nan'ao Community Health Center read a record")
    assert "break-glass" in glass.get_attribute("class")
    expect(page.locator("#timeline li")).to_have_count(2)
    page.screenshot(path=artifacts / "06-history.png", full_page=True)

    # --- appoint a guardian
    go(page, "delegates")
    guardian = "0x" + "5a" * 20
    page.get_by_label("Guardian's account (0x…)").fill(guardian)
    page.get_by_role("button", name="Appoint guardian").click()
    expect(dialog.locator("#sign-words")).to_contain_text("as my guardian")
    page.get_by_role("button", name="Sign and send").click()
    expect(page.locator("#delegates-list li")).to_have_count(1)
    expect(page.locator("#delegates-list li")).to_contain_text(guardian.lower()[2:12], ignore_case=True)
    page.screenshot(path=artifacts / "07-guardians.png", full_page=True)
    page.locator('#delegates-list li button[data-action="remove"]').click()  # remove the guardian again
    expect(dialog.locator("#sign-words")).to_contain_text("I remove")
    page.get_by_role("button", name="Sign and send").click()
    expect(page.locator("#delegates-empty")).to_be_visible()

    # --- sign out; a wrong passphrase is refused, the right one signs in again
    go(page, "account")
    expect(page.locator("#account-address")).to_have_text(patient)
    page.screenshot(path=artifacts / "08-account.png", full_page=True)
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#unlock-form")).to_be_visible()
    page.get_by_label("Passphrase", exact=True).fill("not my passphrase")
    page.get_by_role("button", name="Unlock and sign in").click()
    expect(page.locator("#error")).to_have_text("Wrong passphrase, or the stored key is damaged.")
    page.get_by_label("Passphrase", exact=True).fill(PASSPHRASE)
    page.get_by_role("button", name="Unlock and sign in").click()
    expect(page.locator("#records-body tr")).to_have_count(2)
    assert page.script_errors == []  # type: ignore[attr-defined]

    # --- the same account on a phone, in Chinese, imported from the backup file
    phone = open_portal(browser, consortium.url("kuichong"), locale="zh-CN", phone=True)
    expect(phone.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(phone.locator("h1")).to_have_text("MedLedger 患者门户")
    phone.locator("#import-file").set_input_files(backup)
    phone.get_by_label("备份的口令（导入私钥时为新口令）").fill(PASSPHRASE)
    phone.get_by_role("button", name="导入").click()
    expect(phone.locator("#records-h")).to_have_text("我在联盟内的病历")
    expect(phone.locator("#records-body tr")).to_have_count(2)
    phone.screenshot(path=artifacts / "09-phone-records-zh.png", full_page=True)
    phone.locator('#nav a[data-section="history"]').click()
    expect(phone.locator('#timeline li[data-basis="break_glass"]')).to_contain_text("紧急访问（破窗）")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    phone.screenshot(path=artifacts / "10-phone-history-zh.png", full_page=True)
    assert phone.script_errors == []  # type: ignore[attr-defined]


AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def _axe_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now (rule, impact, first element)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
        const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
        return {passes: r.passes.length,
                violations: r.violations.map(v => `${v.id} (${v.impact}): ${v.nodes[0].target.join(' ')}`)};
    }""")
    assert result["passes"] >= 5, "axe checked (almost) nothing: is the page there?"
    return list(result["violations"])


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_every_screen_passes_the_accessibility_checks(browser: Browser, consortium: Consortium, locale: str) -> None:
    # axe is injected into the page, so this context lets it past the page's Content-Security-Policy
    context = browser.new_context(locale=locale, bypass_csp=True, extra_http_headers={"Accept-Language": locale})
    context.set_default_timeout(WAIT)
    page = context.new_page()
    page.goto(f"{consortium.url('nanao')}/portal/")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    violations = {"welcome": _axe_violations(page)}
    page.locator("#create-passphrase").fill(PASSPHRASE)
    page.locator("#create-confirm").fill(PASSPHRASE)
    page.locator("#create-form button[type=submit]").click()
    expect(page.locator("#backup")).to_be_visible()
    violations["backup"] = _axe_violations(page)
    patient = page.locator("#backup-address").inner_text().strip()
    consortium.upload("dapeng", patient, "notes", "Discharge summary / 出院小结\n".encode())
    asked = consortium.clients["dapeng"].post(
        "/v1/consent-requests",
        json={
            "patient": patient,
            "purposes": ["treatment"],
            "categories": ["notes"],
            "access_days": 7,
            "reason": "Follow-up / 复诊",
            "raised_by": "dr-axe",
        },
    )
    assert asked.status_code == 201, asked.text
    page.locator("#backup-saved").check()
    page.locator("#backup-continue").click()
    expect(page.locator("#records")).to_be_visible()
    for section in ("inbox", "records", "consents", "history", "delegates", "hospitals", "account"):
        go(page, section)
        page.wait_for_load_state("networkidle")
        violations[section] = _axe_violations(page)
    go(page, "inbox")  # a consent request being answered: the pre-filled grant open
    page.locator('#inbox-list button[data-action="approve"]').click()
    expect(page.locator("#request-form")).to_be_visible()
    violations["approval"] = _axe_violations(page)
    go(page, "hospitals")  # the registration desk's code on screen
    page.locator("#register-mrn").fill("AXE-1")
    page.locator("#register-form button[type=submit]").click()
    page.locator("#sign-confirm").click()
    expect(page.locator("#register-code")).to_be_visible()
    violations["registration-code"] = _axe_violations(page)
    go(page, "consents")  # the signing dialog of a grant, with the privacy notice shown before it
    page.locator("#grant-all-members").check()
    page.locator('#grant-categories input[name="category"]').first.check()
    page.locator('#grant-purposes input[name="purpose"]').first.check()
    page.locator("#grant-care-from").fill("2026-10-01")
    page.locator("#grant-form button[type=submit]").click()
    expect(page.locator("#sign-notice-text")).to_be_visible()
    violations["grant-signing"] = _axe_violations(page)
    page.locator("#sign-cancel").click()
    go(page, "records")  # a record's row with its actions, and the record open in the viewer
    page.locator('#records-body button[data-action="view"]').click()
    expect(page.locator("#view-dialog pre")).to_be_visible()
    violations["viewer"] = _axe_violations(page)
    assert {screen: found for screen, found in violations.items() if found} == {}
    context.close()


def test_a_patient_with_a_browser_wallet_signs_in_and_grants_with_it(
    browser: Browser, consortium: Consortium, artifacts: Path
) -> None:
    holder = Account.create()
    chain_id = httpx.post(f"{consortium.url('nanao')}/v1/auth/challenge", timeout=10).json()["chain_id"]
    context = browser.new_context(locale="en-US", extra_http_headers={"Accept-Language": "en-US"})
    context.set_default_timeout(WAIT)
    context.add_init_script(WALLET % (holder.key.hex(), chain_id, chain_id))
    page = context.new_page()
    page.goto(f"{consortium.url('nanao')}/portal/")
    expect(page.locator("#wallet-panel")).to_be_visible()
    page.get_by_role("button", name="Connect wallet and sign in").click()
    expect(page.locator("#who-address")).to_have_text(f"Signed in as {holder.address}")
    go(page, "consents")
    page.get_by_label("Dapeng New District People's Hospital", exact=True).check()
    page.get_by_label("Immunizations", exact=True).check()
    page.get_by_label("Care coordination").check()
    page.get_by_role("button", name="Review what I will sign").click()
    page.get_by_role("button", name="Sign and send").click()
    expect(page.locator('#consents-body tr[data-status="active"]')).to_contain_text("Immunizations")
    go(page, "account")
    expect(page.locator("#account-kind")).to_have_text("Browser wallet")
    page.screenshot(path=artifacts / "11-wallet-account.png", full_page=True)
    calls = page.evaluate("window.ethereum.calls")
    assert "personal_sign" in calls and "eth_signTypedData_v4" in calls  # the wallet signed; the page held no key
    assert page.evaluate("localStorage.getItem('medledger.keystore')") is None
    context.close()


#: a 1x1 PNG (what an imaging viewer export or a photographed document would be)
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc000000301010018dd8db40000000049454e44ae426082"
)
OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "HbA1c"}]},
    "valueQuantity": {"value": 6.1, "unit": "%"},
}
#: a one-page PDF (a scanned referral letter, say)
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


@pytest.mark.parametrize("screen", ["desktop-en", "phone-zh"])
def test_a_patient_views_downloads_exports_and_restricts_their_records(
    browser: Browser, consortium: Consortium, artifacts: Path, screen: str
) -> None:
    """Records held by two hospitals, read through a third: text, FHIR JSON, an image and a PDF open in the
    page (decrypted in the browser), DICOM is offered as a download, one record downloads, all go into one
    archive the chain vouches for, and a record and then all of them are restricted and lifted."""
    holder = Account.create()
    context, page, errors = wallet_page(browser, consortium, "nanao", holder, screen=screen)
    note = consortium.upload(
        "dapeng",
        holder.address,
        "notes",
        "出院小结：恢复良好。Discharge: well.\n".encode(),
        record_kind="inpatient",
        last_encounter="2026-11-20",
    )
    photo = consortium.upload("kuichong", holder.address, "imaging", PNG, "image/png")
    labs = consortium.upload(
        "kuichong",
        holder.address,
        "labs",
        json.dumps(OBSERVATION).encode(),
        "application/fhir+json",
        fhir_resource_type="Observation",
    )
    study = consortium.upload("dapeng", holder.address, "imaging", b"DICM" + bytes(200), "application/dicom")
    letter = consortium.upload("kuichong", holder.address, "documents", PDF, "application/pdf")
    page.goto(f"{consortium.url('nanao')}/portal/")  # signed in at a hospital that holds none of them
    page.locator("#wallet-connect").click()
    expect(page.locator("#records-body tr")).to_have_count(5)

    # retention end and sharing state on every row; the inpatient note is kept 30 years
    row = page.locator(f'tr[data-record-id="{note}"]')
    expect(row).to_contain_text("2056")
    expect(row.locator(".badge.open")).to_be_visible()

    # view: text and FHIR JSON in the page, the image as an image, anything else offered as a download
    row.locator('button[data-action="view"]').click()
    expect(page.locator("#view-dialog pre")).to_contain_text("出院小结：恢复良好。")
    page.screenshot(path=artifacts / f"20-{screen}-view-text.png", full_page=True)
    page.locator("#view-close").click()
    page.locator(f'tr[data-record-id="{labs}"] button[data-action="view"]').click()
    expect(page.locator("#view-dialog pre")).to_contain_text('"resourceType": "Observation"')
    page.locator("#view-close").click()
    page.locator(f'tr[data-record-id="{photo}"] button[data-action="view"]').click()
    image = page.locator("#view-dialog img")
    expect(image).to_have_attribute("src", re.compile(r"^blob:"))
    assert page.evaluate("document.querySelector('#view-dialog img').naturalWidth") == 1
    page.locator("#view-close").click()
    page.locator(f'tr[data-record-id="{letter}"] button[data-action="view"]').click()
    expect(page.locator("#view-dialog iframe")).to_have_attribute("src", re.compile(r"^blob:"))
    page.locator("#view-close").click()
    page.locator(f'tr[data-record-id="{study}"] button[data-action="view"]').click()
    with page.expect_download() as shown:
        page.locator("#view-download").click()
    assert Path(shown.value.path()).read_bytes() == b"DICM" + bytes(200)
    page.locator("#view-close").click()

    # download one record as its file
    with page.expect_download() as downloaded:
        page.locator(f'tr[data-record-id="{photo}"] button[data-action="download"]').click()
    assert Path(downloaded.value.path()).read_bytes() == PNG

    # everything in one archive, with progress; the chain vouches for every record in it
    with page.expect_download() as exported:
        page.locator("#export-all").click()
    expect(page.locator("#export-progress")).to_have_attribute("value", "5")
    archive = Path(exported.value.path()).read_bytes()
    data = consortium.data
    state = json.loads((data / "consortium.json").read_text())
    chain = Chain(RpcBackend(state["chain"]).w3, DeploymentManifest.load(data / "chain" / "deployment.json"))
    checks = verify_archive(archive, chain.records)
    assert passed(checks) and {c.record_id for c in checks} == {note, photo, labs, study, letter}
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        bundle = Bundle.model_validate_json(z.read("bundle.json"))  # FHIR R4: what a validator accepts
    kinds = sorted(entry.resource.__resource_type__ for entry in bundle.entry)
    assert kinds == ["DocumentReference"] * 4 + ["Observation"]
    page.screenshot(path=artifacts / f"21-{screen}-exported.png", full_page=True)

    # restrict one record (signed in words here, applied by the hospital that holds it), then lift it
    page.locator(f'tr[data-record-id="{photo}"] button[data-action="restrict"]').click()
    expect(page.locator("#sign-words")).to_be_visible()
    page.locator("#sign-confirm").click()
    expect(page.locator(f'tr[data-record-id="{photo}"]')).to_have_attribute("data-restricted", "true")
    treatment = consortium.clients["kuichong"].get(
        f"/v1/records/{photo}/content", params={"purpose": "treatment", "clinician": "dr-kc-9"}
    )
    assert treatment.status_code == 403 and treatment.json()["code"] == "record-restricted"
    page.screenshot(path=artifacts / f"22-{screen}-restricted.png", full_page=True)
    page.locator(f'tr[data-record-id="{photo}"] button[data-action="lift"]').click()
    page.locator("#sign-confirm").click()
    expect(page.locator(f'tr[data-record-id="{photo}"]')).to_have_attribute("data-restricted", "false")

    # restrict all of them (the patient's own statement on chain), then lift
    page.locator("#restrict-all").click()
    page.locator("#sign-confirm").click()
    expect(page.locator("#lift-all")).to_be_visible()
    page.locator("#lift-all").click()
    page.locator("#sign-confirm").click()
    expect(page.locator("#restrict-all")).to_be_visible()

    # the history names the patient's own copies and changes
    go(page, "history")
    expect(page.locator('#timeline li[data-basis="patient"]').first).to_be_visible()
    assert errors == []
    context.close()


def _scan(page: Page, canvas: str = "register-qr") -> str:
    """What a registration desk's scanner reads off the code the portal drew (its pixels, decoded by zxing)."""
    drawn = page.evaluate(
        """(id) => {
        const canvas = document.getElementById(id);
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        const luminance = [];
        for (let i = 0; i < pixels.length; i += 4) luminance.push(pixels[i]);
        return {width: canvas.width, height: canvas.height, luminance};
    }""",
        canvas,
    )
    pixels = bytes(drawn["luminance"])  # held here: the view does not copy it
    image = zxingcpp.ImageView(pixels, drawn["width"], drawn["height"], zxingcpp.ImageFormat.Lum)
    found = zxingcpp.read_barcode(image)
    assert found is not None and found.format == zxingcpp.BarcodeFormat.QRCode
    return found.text


@pytest.mark.parametrize("screen", ["desktop-en", "phone-zh"])
def test_a_hospital_asks_the_patient_answers_in_the_inbox_and_the_hospital_reads(
    browser: Browser, consortium: Consortium, artifacts: Path, screen: str
) -> None:
    """Enrolment at the desk (the QR scanned at another hospital on desktop, the short code read out at this
    one on the phone), then the hospital asks by its own patient number; the patient finds the request in
    the inbox of the hospital they signed in at, narrows nothing, signs, and the hospital reads the record."""
    phone = screen == "phone-zh"
    portal, requester = ("nanao", "nanao") if phone else ("kuichong", "dapeng")
    holder = Account.create()
    context, page, errors = wallet_page(browser, consortium, portal, holder, screen=screen)
    labs = consortium.upload("kuichong", holder.address, "labs", b"HbA1c 6.1 %")
    page.goto(f"{consortium.url(portal)}/portal/")
    expect(page.locator("h1 + p")).to_contain_text(
        "南澳社区健康服务中心" if phone else "Kuichong Community Health Center"
    )
    page.locator("#wallet-connect").click()
    expect(page.locator("#records-body tr")).to_have_count(1)
    if phone:  # the hospital under its Chinese name
        expect(page.locator("#records-body")).to_contain_text("葵涌社区健康服务中心")

    # --- at the registration desk: a signed statement, as a QR code (and a short code at this very hospital)
    mrn = f"MRN-{holder.address[2:10].upper()}"
    go(page, "hospitals")
    page.locator("#register-hospital").select_option(consortium.account(requester))
    page.locator("#register-mrn").fill(mrn)
    page.locator("#register-form button[type=submit]").click()
    expect(page.locator("#sign-words")).to_contain_text(mrn)
    page.locator("#sign-confirm").click()
    expect(page.locator("#register-code")).to_be_visible()
    page.screenshot(path=artifacts / f"30-{screen}-registration-code.png", full_page=True)
    if phone:
        code = re.search(r"[0-9A-Z]{4}-[0-9A-Z]{4}", page.locator("#register-short").inner_text()).group(0)
        linked = consortium.clients[requester].post("/v1/patient-links", json={"code": code})
    else:
        expect(page.locator("#register-note")).to_contain_text("Dapeng")  # no short code for another hospital
        expect(page.locator("#register-short")).to_be_empty()
        linked = consortium.clients[requester].post("/v1/patient-links", json={"statement": json.loads(_scan(page))})
    assert linked.status_code == 200, linked.text
    assert linked.json()["patient"] == holder.address and linked.json()["mrn"] == mrn
    page.reload()
    page.locator("#wallet-connect").click()
    go(page, "hospitals")
    expect(page.locator("#links-body tr")).to_have_count(1)
    if phone:  # the number shows only at the hospital that gave it: another one passing it on never sees it
        expect(page.locator("#links-body")).to_contain_text(mrn)
    else:
        expect(page.locator("#links-body")).not_to_contain_text(mrn)
        expect(page.locator("#links-body")).to_contain_text("Dapeng New District People's Hospital")

    # --- the hospital asks by its own number; the patient's inbox shows it, unread
    asked = []
    for reason in ("Referral: recent lab results", "Second opinion")[: 2 if phone else 1]:
        response = consortium.clients[requester].post(
            "/v1/consent-requests",
            json={
                "patient": f"mrn:{mrn}",
                "purposes": ["treatment"],
                "categories": ["labs", "imaging"],
                "access_days": 30,
                "reason": reason,
                "raised_by": "dr-li",
                "custodians": [consortium.account("kuichong")],
            },
        )
        assert response.status_code == 201, response.text
        asked.append(response.json()["id"])
    page.reload()
    page.locator("#wallet-connect").click()
    expect(page.locator("#inbox-count")).to_be_visible()
    go(page, "inbox")
    requests = page.locator('#inbox-list li[data-kind="consent_request"]')
    expect(requests).to_have_count(len(asked))
    expect(page.locator('#inbox-list li[data-kind="new_record"]')).to_have_count(1)
    expect(requests.first).to_contain_text("葵涌社区健康服务中心" if phone else "Kuichong Community Health Center")
    page.screenshot(path=artifacts / f"31-{screen}-inbox.png", full_page=True)
    assert page.locator('#inbox-list li[data-unread="true"]').count() >= len(asked) + 1
    if phone:  # the second request is declined, signed in words
        page.locator(f'#inbox-list li[data-item="consent_request:{asked[1]}"] button[data-action="decline"]').click()
        expect(page.locator("#sign-words")).to_contain_text("拒绝")
        page.locator("#sign-confirm").click()
        expect(page.locator(f'#inbox-list li[data-item="consent_request:{asked[1]}"]')).to_contain_text("已拒绝")

    # --- approve: the grant is pre-filled with what was asked; the patient unticks imaging, then signs
    page.locator(f'#inbox-list li[data-item="consent_request:{asked[0]}"] button[data-action="approve"]').click()
    expect(page.locator("#request-form")).to_be_visible()
    expect(page.locator("#request-categories input")).to_have_count(2)
    page.locator("#request-categories input[value]").nth(1).uncheck()
    page.locator("#request-form button[type=submit]").click()
    expect(page.locator("#sign-words")).to_be_visible()
    page.locator("#sign-confirm").click()
    expect(page.locator("#request-form")).to_be_hidden()

    # the requesting hospital sees the answer (its node read the grant on chain) and reads the record
    client = consortium.clients[requester]
    deadline = time.monotonic() + 60
    while client.get(f"/v1/consent-requests/{asked[0]}").json()["state"] != "granted":
        assert time.monotonic() < deadline, "the grant never answered the request"
        time.sleep(0.5)
    read = consortium.read(requester, labs, "kuichong", "dr-li")
    assert read.status_code == 200 and read.content == b"HbA1c 6.1 %"
    page.locator("#inbox-mark-read").click()
    expect(page.locator("#inbox-count")).to_be_hidden()
    page.reload()
    page.locator("#wallet-connect").click()
    go(page, "inbox")
    expect(page.locator(f'#inbox-list li[data-item="consent_request:{asked[0]}"]')).to_contain_text(
        "同意" if phone else "You granted"
    )
    expect(page.locator('#inbox-list li[data-kind="access"]').first).to_be_visible()
    page.screenshot(path=artifacts / f"32-{screen}-answered.png", full_page=True)

    # the patient removes the link; the hospital keeps the record it had, and loses only the shortcut
    go(page, "hospitals")
    page.locator("#links-body button").click()
    page.locator("#sign-confirm").click()
    expect(page.locator("#links-body tr")).to_have_count(0)
    assert client.get(f"/v1/patients/mrn:{mrn}/consent-requests").status_code == 404
    assert errors == []
    context.close()


@pytest.mark.parametrize("screen", ["desktop-en", "phone-zh"])
def test_a_patient_names_the_hospitals_limits_the_days_of_care_and_hides_a_record(
    browser: Browser, consortium: Consortium, artifacts: Path, screen: str
) -> None:
    """A grant names every member active now (each listed in what is signed, after the privacy notice) and
    covers only October's care: a hospital it names reads October's record and not June's; a record the
    patient hides is released under no consent until shown again."""
    phone = screen == "phone-zh"
    portal = "nanao" if phone else "kuichong"
    holder = Account.create()
    context, page, errors = wallet_page(browser, consortium, portal, holder, screen=screen)
    october = consortium.upload("dapeng", holder.address, "labs", b"HbA1c 6.1 %", last_encounter="2026-10-15")
    june = consortium.upload("dapeng", holder.address, "labs", b"HbA1c 7.4 %", last_encounter="2026-06-02")
    note = consortium.upload(
        "dapeng", holder.address, "notes", "门诊记录 Outpatient note".encode(), last_encounter="2026-10-20"
    )
    page.goto(f"{consortium.url(portal)}/portal/")
    page.locator("#wallet-connect").click()
    expect(page.locator("#records-body tr")).to_have_count(3)

    # the grant: every member now, each named; labs and notes for treatment; October's care only
    go(page, "consents")
    expect(page.locator("#grant-members input")).to_have_count(3)
    page.locator("#grant-all-members").check()
    members = [consortium.account(slug) for slug in ("dapeng", "kuichong", "nanao")]
    for account in members:
        expect(page.locator(f'#grant-members input[value="{account}"]')).to_be_checked()
    page.locator('#grant-categories input[value="0"]').check()  # labs
    page.locator('#grant-categories input[value="6"]').check()  # notes
    page.locator('#grant-purposes input[value="0"]').check()  # treatment
    page.locator("#grant-care-from").fill("2026-10-01")
    page.locator("#grant-care-to").fill("2026-10-31")
    page.locator("#grant-form button[type=submit]").click()
    words = page.locator("#sign-words")
    if phone:
        expect(words).to_contain_text("葵涌社区健康服务中心")
        expect(page.locator("#sign-notice-text")).to_contain_text("个人信息处理告知书（第 1 版）")
    else:
        expect(words).to_contain_text("Nan'ao Community Health Center")
        expect(words).to_contain_text("a hospital that joins later needs a new consent")
        expect(page.locator("#sign-notice-text")).to_contain_text("A hospital that joins later")
    raw = json.loads(page.locator("#sign-raw").text_content())
    assert sorted(raw["message"]["grantees"]) == sorted(members)
    assert (raw["message"]["careFrom"], raw["message"]["careTo"]) == (20_727, 20_757)  # 2026-10-01, 2026-10-31
    page.screenshot(path=artifacts / f"40-{screen}-grant-named-october.png", full_page=True)
    page.locator("#sign-confirm").click()
    active = page.locator('#consents-body tr[data-status="active"]')
    expect(active).to_have_count(1)
    expect(active.locator("td[data-label]").nth(3)).to_contain_text("2026" if phone else "Oct 2026")

    # a hospital it names reads October's record, not June's
    assert consortium.read("kuichong", october, "dapeng", "dr-k").status_code == 200
    assert consortium.read("kuichong", june, "dapeng", "dr-k").status_code == 403
    assert consortium.read("nanao", note, "dapeng", "dr-n").status_code == 200

    # hide the note: no consent releases it; show it again
    go(page, "records")
    row = page.locator(f'tr[data-record-id="{note}"]')
    row.locator('button[data-action="hide"]').click()
    expect(page.locator("#sign-notice-text")).to_be_visible()
    page.locator("#sign-confirm").click()
    expect(row).to_have_attribute("data-hidden", "true")
    expect(row.locator(".badge.hidden")).to_be_visible()
    page.screenshot(path=artifacts / f"41-{screen}-record-hidden.png", full_page=True)
    assert consortium.read("nanao", note, "dapeng", "dr-n").status_code == 403
    assert consortium.read("kuichong", october, "dapeng", "dr-k").status_code == 200  # the others stay shared
    row.locator('button[data-action="show"]').click()
    page.locator("#sign-confirm").click()
    expect(row).to_have_attribute("data-hidden", "false")
    assert consortium.read("nanao", note, "dapeng", "dr-n").status_code == 200
    assert errors == []
    context.close()


def _relay_and_wait(consortium: Consortium, slug: str, path: str, body: dict) -> None:
    """A hospital passes on a signed message and waits until the chain has it."""
    client = consortium.clients[slug]
    relay = client.post(path, json=body)
    assert relay.status_code == 202, relay.text
    deadline = time.monotonic() + WAIT / 1000
    while client.get(f"/v1/relays/{relay.json()['id']}").json()["state"] != "confirmed":
        assert time.monotonic() < deadline, "the relay did not land"
        time.sleep(0.2)


@pytest.mark.parametrize("screen", ["desktop-en", "phone-zh"])
def test_a_patient_appoints_a_guardian_to_view_then_to_manage_and_sees_what_the_guardian_did(
    browser: Browser, consortium: Consortium, artifacts: Path, screen: str
) -> None:
    """A guardian to view only, until a date, kept from mental health records: what is signed says so in
    words; then edited to manage, with no end; the guardian grants a consent through a hospital, and the
    patient's history shows that grant as the guardian's and the appointments as the patient's own."""
    phone = screen == "phone-zh"
    portal = "nanao" if phone else "kuichong"
    holder, guardian = Account.create(), Account.create()
    context, page, errors = wallet_page(browser, consortium, portal, holder, screen=screen, bypass_csp=True)
    consortium.upload("dapeng", holder.address, "labs", b"HbA1c 6.1 %")
    page.goto(f"{consortium.url(portal)}/portal/")
    page.locator("#wallet-connect").click()
    expect(page.locator("#records-body tr")).to_have_count(1)

    go(page, "delegates")
    page.locator("#delegate-address").fill(guardian.address)
    page.locator("#delegate-scope-view").check()
    page.locator("#delegate-until").fill("2030-06-30")
    page.locator('#delegate-excluded input[value="4"]').check()  # mental health
    page.locator("#delegate-submit").click()
    words = page.locator("#sign-words")
    expect(words).to_contain_text("不能作任何决定" if phone else "and decide nothing")
    expect(words).to_contain_text("精神心理健康" if phone else "Mental health")
    raw = json.loads(page.locator("#sign-raw").text_content())
    assert (raw["message"]["scope"], raw["message"]["excludedCategories"]) == (1, 16)
    assert time.gmtime(raw["message"]["validUntil"])[:3] in ((2030, 6, 30), (2030, 7, 1))  # its end, local time
    page.screenshot(path=artifacts / f"50-{screen}-guardian-view-signing.png", full_page=True)
    page.locator("#sign-confirm").click()
    item = page.locator(f'#delegates-list li[data-delegate="{guardian.address}"]')
    expect(item).to_have_attribute("data-scope", "view")
    expect(item).to_contain_text("2030")
    assert _axe_violations(page) == []

    item.locator('button[data-action="edit"]').click()
    expect(page.locator("#delegate-address")).to_have_value(guardian.address)
    expect(page.locator('#delegate-excluded input[value="4"]')).to_be_checked()
    page.locator("#delegate-scope-manage").check()
    page.locator("#delegate-until").fill("")
    page.locator("#delegate-submit").click()
    expect(words).to_contain_text("代我授予" if phone else "grant, revoke and restrict for me")
    page.locator("#sign-confirm").click()
    expect(item).to_have_attribute("data-scope", "manage")
    page.screenshot(path=artifacts / f"51-{screen}-guardian-manages.png", full_page=True)

    # the guardian grants labs for the patient, through a hospital
    domain = consortium.clients["dapeng"].get(f"/v1/patients/{holder.address}/signing-domain").json()
    message = grant_message(holder.address, consortium.account("nanao"), nonce=domain["nonce"], lasts_s=86_400)
    body = signed_grant_body(guardian, message, chain_id=domain["chain_id"], contract=domain["verifying_contract"])
    _relay_and_wait(consortium, "dapeng", "/v1/consents", body)

    go(page, "history")
    by_guardian = page.locator('#account-changes li[data-by="delegate"]')
    expect(by_guardian).to_have_count(1)
    expect(by_guardian).to_contain_text(guardian.address)
    expect(by_guardian).to_have_attribute("data-kind", "grant")
    expect(page.locator('#account-changes li[data-by="patient"]')).to_have_count(2)  # the two appointments
    assert _axe_violations(page) == []
    page.screenshot(path=artifacts / f"52-{screen}-history-guardian.png", full_page=True)

    # what the guardian gave in the patient's name is the patient's to confirm (or revoke)
    go(page, "consents")
    given = page.locator('#consents-body tr[data-status="active"]')
    expect(given.locator(".badge.guardian")).to_be_visible()
    given.locator('button[data-action="confirm"]').click()
    expect(words).to_contain_text("作为我本人的决定" if phone else "as my own")
    page.locator("#sign-confirm").click()
    expect(given.locator(".badge.confirmed")).to_be_visible()
    expect(given.locator('button[data-action="confirm"]')).to_have_count(0)

    go(page, "delegates")
    item.locator('button[data-action="remove"]').click()
    expect(words).to_contain_text("取消" if phone else "I remove")
    page.locator("#sign-confirm").click()
    expect(page.locator("#delegates-empty")).to_be_visible()
    assert errors == []
    context.close()


def _desk_approves_recovery(consortium: Consortium, slug: str, holder, new_key: str) -> None:
    """The patient registers at ``slug``'s desk (a link to a fresh number), which then approves a recovery of
    their account to ``new_key`` after checking who they are."""
    client = consortium.clients[slug]
    domain = client.get(f"/v1/patients/{holder.address}/signing-domain").json()
    statement = link_statement(
        holder,
        hospital=consortium.account(slug),
        mrn=fresh_mrn(),
        chain_id=domain["chain_id"],
        contract=domain["verifying_contract"],
    )
    assert client.post("/v1/patient-links", json={"statement": statement}).status_code == 200
    approval = {"new_key": new_key, "identity_checked_by": f"desk-{slug}"}
    approved = client.post(f"/v1/patients/{holder.address}/recovery/approvals", json=approval)
    assert approved.status_code == 200, approved.text


@pytest.mark.parametrize("screen", ["desktop-en", "phone-zh"])
def test_a_patient_stops_a_recovery_they_did_not_ask_for_and_moves_to_a_new_key(
    browser: Browser, consortium: Consortium, artifacts: Path, screen: str
) -> None:
    """Two hospitals approve a recovery of the account to someone else's key: the patient's inbox says so, and
    the account screen lets the key they still hold cancel it. Then the patient moves the account to a new
    key of their own, and signed in with it finds the same account and records."""
    phone = screen == "phone-zh"
    portal = "nanao" if phone else "kuichong"
    holder, thief, new = Account.create(), Account.create(), Account.create()
    consortium.upload("dapeng", holder.address, "labs", b"HbA1c 6.1 %")
    context, page, errors = wallet_page(browser, consortium, portal, holder, screen=screen, bypass_csp=True)
    page.goto(f"{consortium.url(portal)}/portal/")
    page.locator("#wallet-connect").click()
    expect(page.locator("#records-body tr")).to_have_count(1)

    for slug in ("dapeng", "kuichong"):
        _desk_approves_recovery(consortium, slug, holder, thief.address)
    go(page, "inbox")
    alarm = page.locator('#inbox-list li[data-kind="key"]')
    expect(alarm).to_contain_text(thief.address)
    alarm.locator('a[data-action="review-key"]').click()
    expect(page.locator("#account")).to_be_visible()
    expect(page.locator("#account-key")).to_have_text(holder.address)
    pending = page.locator("#recovery-pending")
    expect(pending).to_be_visible()
    expect(pending).to_contain_text(thief.address)
    assert _axe_violations(page) == []
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page scrolls sideways ({width}px)"
    page.screenshot(path=artifacts / f"60-{screen}-recovery-alarm.png", full_page=True)
    page.locator("#recovery-cancel").click()
    expect(page.locator("#sign-words")).to_contain_text(thief.address)
    page.locator("#sign-confirm").click()
    expect(pending).to_be_hidden()

    page.locator("#rotate-new-key").fill(new.address)
    page.locator("#rotate-form button[type=submit]").click()
    expect(page.locator("#sign-words")).to_contain_text(new.address)
    raw = json.loads(page.locator("#sign-raw").text_content())
    assert (raw["primaryType"], raw["message"]["newKey"]) == ("KeyRotation", new.address)
    page.locator("#sign-confirm").click()
    expect(page.locator("#welcome")).to_be_visible()  # signed out: the new key is in another wallet
    assert errors == []
    context.close()

    context, page, errors = wallet_page(browser, consortium, portal, new, screen=screen)
    page.goto(f"{consortium.url(portal)}/portal/")
    page.locator("#wallet-connect").click()
    expect(page.locator("#records-body tr")).to_have_count(1)  # the same account, with its record
    go(page, "account")
    expect(page.locator("#account-address")).to_have_text(holder.address)
    expect(page.locator("#account-key")).to_have_text(new.address)
    page.screenshot(path=artifacts / f"61-{screen}-new-key.png", full_page=True)
    assert errors == []
    context.close()


@pytest.mark.parametrize("screen", ["desktop-en", "phone-zh"])
def test_a_guardian_looks_after_a_childs_account_from_the_portal(
    browser: Browser, consortium: Consortium, artifacts: Path, screen: str
) -> None:
    """A hospital's desk enrols a child's account held by their guardian (the birth date stays at the hospital);
    the guardian, signed in with their own key, finds the child among the accounts they look after, acts for
    it, sees its record and grants a consent for it, signed with the guardian's key; then returns to their own."""
    phone = screen == "phone-zh"
    portal = "nanao" if phone else "kuichong"
    guardian, child = Account.create(), Account.create().address
    born = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 10 * 365 * 86_400))
    enrolled = consortium.clients["dapeng"].post(
        "/v1/minors",
        json={"account": child, "guardian": guardian.address, "date_of_birth": born, "identity_checked_by": "desk-3"},
    )
    assert enrolled.status_code == 201, enrolled.text
    record = consortium.upload("dapeng", child, "immunizations", b"MMR dose 2")
    context, page, errors = wallet_page(browser, consortium, portal, guardian, screen=screen, bypass_csp=True)
    page.goto(f"{consortium.url(portal)}/portal/")
    page.locator("#wallet-connect").click()
    expect(page.locator("#records-body tr")).to_have_count(0)  # the guardian's own account: nothing

    go(page, "delegates")
    cared = page.locator(f'#caring-list li[data-patient="{child}"]')
    expect(cared).to_have_attribute("data-scope", "manage")
    expect(cared).to_contain_text(enrolled.json()["minor_until"][:4])
    assert _axe_violations(page) == []
    cared.locator('button[data-action="act-for"]').click()
    expect(page.locator("#acting")).to_be_visible()
    expect(page.locator("#acting-words")).to_contain_text(child)
    expect(page.locator("#records-body tr")).to_have_count(1)  # the child's record
    # the guardian reads it, decrypted in their browser; the hospital that holds it logs the guardian's copy
    page.locator(f'tr[data-record-id="{record}"] button[data-action="view"]').click()
    expect(page.locator("#view-dialog pre")).to_contain_text("MMR dose 2")
    page.locator("#view-close").click()
    trail = consortium.clients["dapeng"].get(f"/v1/patients/{child}/access-log").json()
    assert [(e["action"], e["requester"]) for e in trail] == [("self_access", guardian.address)]

    go(page, "consents")
    page.locator(f'#grant-members input[value="{consortium.account("nanao")}"]').check()
    page.locator('#grant-categories input[value="8"]').check()  # immunizations
    page.locator('#grant-purposes input[value="0"]').check()  # treatment
    page.locator("#grant-form button[type=submit]").click()
    expect(page.locator("#sign-notice-text")).to_be_visible()
    raw = json.loads(page.locator("#sign-raw").text_content())
    assert raw["message"]["patient"] == child  # for the child's account, signed with the guardian's key
    page.locator("#sign-confirm").click()
    expect(page.locator('#consents-body tr[data-status="active"]')).to_have_count(1)
    page.screenshot(path=artifacts / f"70-{screen}-guardian-acts-for-child.png", full_page=True)
    go(page, "delegates")
    expect(page.locator("#delegate-form")).to_be_hidden()  # a guardian appoints no one for the child

    page.locator("#acting-back").click()
    expect(page.locator("#acting")).to_be_hidden()
    go(page, "consents")
    expect(page.locator("#consents-body tr")).to_have_count(0)  # the guardian's own consents: none
    assert errors == []
    context.close()

    # the child, with a key of their own, signs the claim the desk will send once they are of age
    own_key = Account.create()
    context, page, errors = wallet_page(browser, consortium, portal, own_key, screen=screen, bypass_csp=True)
    page.goto(f"{consortium.url(portal)}/portal/")
    page.locator("#wallet-connect").click()
    go(page, "account")
    page.locator("#claim-account").fill(child)
    page.locator("#claim-scope-view").check()
    page.locator("#claim-form button[type=submit]").click()
    expect(page.locator("#sign-words")).to_contain_text(child)
    page.locator("#sign-confirm").click()
    expect(page.locator("#claim-code")).to_be_visible()
    assert _axe_violations(page) == []
    claim = json.loads(_scan(page, "claim-qr"))
    assert (claim["account"], claim["key"], claim["guardian_scope"]) == (child, own_key.address, "view")
    signed = MinorClaim(account=child, key=own_key.address, guardian_scope=1, deadline=claim["deadline"])
    document = signed.document(chain_id=raw["domain"]["chainId"], contract=raw["domain"]["verifyingContract"])
    sig = claim["signature"]
    assert (
        recover_typed(document, sig["v"], bytes.fromhex(sig["r"][2:]), bytes.fromhex(sig["s"][2:])) == own_key.address
    )
    desk = consortium.clients["dapeng"].post(
        f"/v1/minors/{child}/claim", json=claim | {"identity_checked_by": "desk-3"}
    )
    assert (desk.status_code, desk.json()["code"]) == (409, "minor-not-of-age")  # years from now, not today
    page.screenshot(path=artifacts / f"71-{screen}-child-claim-code.png", full_page=True)
    assert errors == []
    context.close()
