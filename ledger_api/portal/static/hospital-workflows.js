// The patient's side of hospitals' workflows: the inbox (with hospitals' consent requests to answer),
// and the links between the patient's account and hospitals' own patient numbers (MRN).
//
// Nothing here is trusted from the page: a consent request is answered by a grant the patient signs
// (EIP-712, shown in words first) or by a signed refusal; a link is a signed statement the hospital's
// own node checks. The registration code is drawn on a canvas from the signed statement's text
// (qrcode-generator); the hospital's desk scans it and hands the text to its node.

import qrcode from "./vendor/qrcode.mjs";

const LINK_TYPE = [
  { name: "patient", type: "address" }, { name: "hospital", type: "address" }, { name: "mrn", type: "string" },
  { name: "linked", type: "bool" }, { name: "issuedAt", type: "uint256" }, { name: "deadline", type: "uint256" },
];
const REFUSAL_TYPE = [
  { name: "patient", type: "address" }, { name: "requester", type: "address" },
  { name: "requestId", type: "bytes16" }, { name: "deadline", type: "uint256" },
];
const MRN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const CODE_VALIDITY_S = 600;
const QR_SCALE = 4;
const QR_BORDER = 4;

export function workflows(ui) {
  const { api, t, el, $, guarded, status, showError, state, config } = ui;
  ui.types.PatientNumberLink = LINK_TYPE;
  ui.types.ConsentRequestRefusal = REFUSAL_TYPE;
  let answering = null;

  // --------------------------------------------------------------------------------------- inbox

  function headline(item) {
    const hospital = item.member ? ui.memberName(item.member, item.member_name) : t("inbox.every_member");
    const d = item.detail;
    switch (item.kind) {
      case "consent_request":
        return d.state === "requested" ? t("inbox.consent_request", { hospital })
                                       : t(`inbox.consent_request.${d.state}`, { hospital });
      case "new_record":
        return t("inbox.new_record", { hospital, category: ui.categoryLabel(d.category) });
      case "access":
        return t(d.break_glass ? "inbox.access_break_glass" : "inbox.access",
                 { hospital, custodian: ui.memberName(d.custodian, d.custodian_name) });
      case "break_glass":
        return t("inbox.break_glass", { hospital });
      case "review":
        return t("inbox.review", { hospital, decision: t(`review.${d.decision}`) });
      case "key":
        return t(`inbox.key_${d.stage}`, { key: d.new_key, when: d.ready_at ? ui.when(d.ready_at) : "" });
      default:  // a grant or revocation: every member it names
        return t(`inbox.${item.kind}`, { hospital: d.grantees?.length ? ui.memberNames(d.grantees) : hospital,
                                         id: ui.consentNumber(d.consent_id) });
    }
  }

  function requestDetails(item) {
    const d = item.detail;
    const lines = [el("p", { text: t("inbox.request_detail", {
      purposes: d.purposes.map((p) => ui.purposeLabel(config.purposes.find((x) => x.name === p)?.bit)).join("、"),
      categories: d.categories.map((c) => ui.categoryLabel(config.categories.find((x) => x.name === c)?.bit)).join("、"),
      days: d.access_days, reason: d.reason }) })];
    if (d.custodians.length) {
      lines.push(el("p", { text: t("inbox.request_custodians", {
        custodians: d.custodians.map((account) => ui.memberName(account)).join(config.language === "zh" ? "、" : ", ") }) }));
    }
    if (d.care_from || d.care_to) {
      lines.push(el("p", { text: t("inbox.request_care", { from: d.care_from ?? "…", to: d.care_to ?? "…" }) }));
    }
    if (item.needs_answer) {
      lines.push(el("p", { class: "muted", text: t("inbox.request_answer_by", { date: ui.when(d.expires_at) }) }));
      const hospital = ui.memberName(d.requester, d.requester_name);
      lines.push(el("p", { class: "actions" },
        el("button", { type: "button", text: t("requests.review"), "data-action": "approve",
                       "aria-label": `${t("requests.review")}: ${hospital}`, onclick: () => openApproval(d) }),
        el("button", { type: "button", class: "secondary", text: t("requests.decline"), "data-action": "decline",
                       "aria-label": `${t("requests.decline")}: ${hospital}`,
                       onclick: (e) => decline(e.currentTarget, d) })));
    }
    return lines;
  }

  async function loadInbox() {
    const inbox = await api(`/v1/patients/${state.address}/inbox`);
    ui.partialNotice("inbox", inbox.incomplete);
    showCount(inbox.unread_total);
    const u = inbox.unread;
    $("inbox-summary").textContent = inbox.unread_total
      ? t("inbox.counts", { requests: u.consent_request, records: u.new_record, accesses: u.access,
                            emergencies: u.break_glass + u.review, consents: u.grant + u.revocation })
      : t("inbox.unread_none");
    $("inbox-list").replaceChildren(...inbox.items.map((item) => {
      const glass = item.kind === "break_glass" || (item.kind === "access" && item.detail.break_glass);
      const entry = el("li", { class: [item.unread ? "unread" : "", glass ? "break-glass" : ""].join(" ").trim(),
                               "data-kind": item.kind, "data-unread": String(item.unread), "data-item": item.id },
        el("p", { class: "when" }, el("time", { datetime: item.at, text: ui.when(item.at) }),
           ...(item.unread ? [" ", ui.badge("new", t("inbox.new"))] : [])),
        el("p", {}, el("strong", { text: headline(item) })));
      if (item.kind === "consent_request") entry.append(...requestDetails(item));
      if (item.kind === "key" && item.needs_answer) {  // a recovery under way: the account's key may stop it
        entry.append(el("p", { class: "actions" }, el("a", { href: "#account", class: "button", "data-action": "review-key",
                                                             text: t("inbox.key_review") })));
      }
      if (item.kind === "access" && item.detail.break_glass) {
        const review = item.detail.review || "pending";
        entry.append(el("p", {}, ui.badge(review, t(`review.${review}`))));
      }
      return entry;
    }));
    $("inbox-empty").hidden = inbox.items.length > 0;
    $("inbox-mark-read").disabled = inbox.unread_total === 0;
  }

  function showCount(count) {
    const badge = $("inbox-count");
    badge.textContent = count ? t("inbox.unread", { count }) : "";
    badge.hidden = !count;
  }

  async function refreshCount() {
    try { showCount((await api(`/v1/patients/${state.address}/inbox`)).unread_total); } catch { /* the inbox says why */ }
  }

  async function markRead(event) {
    await guarded(event.currentTarget, async () => {
      await api(`/v1/patients/${state.address}/inbox/seen`, { method: "POST", body: {} });
      await loadInbox();
    });
  }

  // ------------------------------------------------------------------------------- answering requests

  function openApproval(request) {
    answering = request;
    const hospital = ui.memberName(request.requester, request.requester_name);
    $("request-form-h").textContent = t("requests.heading", { hospital });
    $("request-form-reason").textContent = request.reason;
    const terms = request.suggested_grant;
    // only what the hospital asked for is offered, ticked: the patient can narrow, never widen
    for (const [box, list, name, bits] of [["request-categories", config.categories, "request-category", terms.categories],
                                           ["request-purposes", config.purposes, "request-purpose", terms.purposes]]) {
      $(box).replaceChildren(...list.filter((item) => (bits >> item.bit) & 1).map((item) => el("div", {},
        el("input", { type: "checkbox", id: `${name}-${item.name}`, name, value: String(item.bit), checked: "" }),
        " ", el("label", { for: `${name}-${item.name}`, text: item.label }))));
    }
    const until = new Date(terms.valid_until * 1000).toISOString().slice(0, 10);
    $("request-until").value = until;
    $("request-until").max = until;
    $("request-until").min = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    $("request-form").hidden = false;
    $("request-form-h").setAttribute("tabindex", "-1");
    $("request-form-h").focus();
  }

  function closeApproval() {
    answering = null;
    $("request-form").hidden = true;
  }

  async function approve(event) {
    event.preventDefault();
    const request = answering;
    if (!request) return;
    const categories = ui.checkedBits("request-category");
    const purposes = ui.checkedBits("request-purpose");
    if (!categories) return showError(t("grant.need_category"));
    if (!purposes) return showError(t("grant.need_purpose"));
    const terms = request.suggested_grant;
    const [year, month, date] = $("request-until").value.split("-").map(Number);
    const chosen = Math.floor(new Date(year, month - 1, date, 23, 59, 59).getTime() / 1000);
    const now = Math.floor(Date.now() / 1000);
    const validUntil = Math.min(chosen, terms.valid_until);
    if (!year || validUntil <= now) return showError(t("grant.need_future"));
    const validFrom = Math.max(terms.valid_from, now - 60);
    const hospital = ui.memberName(request.requester, request.requester_name);
    await guarded(event.submitter, async () => {
      const domainInfo = await ui.signingDomain();
      // only what was asked, for the care it was asked for: the patient may narrow it, never widen it
      const message = ui.grantMessage({ grantees: terms.grantees, categories: categories & terms.categories,
                                        purposes: purposes & terms.purposes, validFrom, validUntil,
                                        careFrom: terms.care_from, careTo: terms.care_to, nonce: domainInfo.nonce,
                                        deadline: now + ui.SIGNATURE_VALIDITY_S });
      const words = ui.grantWords(message, terms.care_from, terms.care_to);
      if (!(await ui.confirmSignature(words, "ConsentGrant", message, domainInfo))) return status("");
      const signature = await ui.signTyped("ConsentGrant", message, domainInfo);
      const relay = await api("/v1/consents", { method: "POST",
                                                body: ui.grantBody(message, terms.care_from, terms.care_to, signature) });
      closeApproval();
      await ui.awaitRelay(relay);
      await loadInbox();
      status(t("requests.granted", { hospital }));
    });
  }

  async function decline(button, request) {
    const hospital = ui.memberName(request.requester, request.requester_name);
    await guarded(button, async () => {
      const domainInfo = await ui.signingDomain();
      const message = { patient: state.address, requester: request.requester, requestId: "0x" + request.id,
                        deadline: Math.floor(Date.now() / 1000) + ui.SIGNATURE_VALIDITY_S };
      if (!(await ui.confirmSignature(t("sign.refusal", { hospital }), "ConsentRequestRefusal", message, domainInfo))) {
        return status("");
      }
      const signature = await ui.signTyped("ConsentRequestRefusal", message, domainInfo);
      await api(`/v1/consent-requests/${request.id}/refusal`, { method: "POST", body: {
        patient: state.address, requester: request.requester, deadline: message.deadline, signature } });
      await loadInbox();
      status(t("requests.declined", { hospital }));
    });
  }

  // ------------------------------------------------------------------------------- hospital numbers

  async function loadLinks() {
    const view = await api(`/v1/patients/${state.address}/overview/links`);
    ui.partialNotice("hospitals", view.members);
    const rows = view.members.flatMap((member) => member.links.map((link) => {
      const hospital = ui.memberName(link.hospital, link.hospital_name);
      return el("tr", { "data-hospital": link.hospital },
        ui.cell(t("hospitals.col_hospital"), hospital),
        ui.cell(t("hospitals.col_mrn"), link.mrn === null ? el("span", { class: "muted", text: t("hospitals.mrn_there") })
                                                          : el("span", { class: "mono", text: link.mrn })),
        ui.cell(t("hospitals.col_since"), ui.when(link.linked_at)),
        ui.cell(t("col.actions"), el("button", { type: "button", class: "secondary", text: t("hospitals.remove"),
                                                 "aria-label": `${t("hospitals.remove")}: ${hospital}`,
                                                 onclick: (e) => unlink(e.currentTarget, link.hospital, hospital) })));
    }));
    $("links-body").replaceChildren(...rows);
    $("links-empty").hidden = rows.length > 0;
    const select = $("register-hospital");
    const current = select.value || config.node.account;
    select.replaceChildren(...state.members.filter((m) => m.role === "member" && m.status === "active")
      .map((m) => el("option", { value: m.account, text: ui.memberName(m.account, m.name) })));
    select.value = current;
  }

  async function signStatement(hospital, mrn, linked) {
    const domainInfo = await ui.signingDomain();
    const now = Math.floor(Date.now() / 1000);
    const message = { patient: state.address, hospital, mrn, linked, issuedAt: Date.now(), deadline: now + CODE_VALIDITY_S };
    const name = ui.memberName(hospital);
    const words = linked ? t("sign.link", { hospital: name, mrn }) : t("sign.unlink", { hospital: name });
    if (!(await ui.confirmSignature(words, "PatientNumberLink", message, domainInfo))) return null;
    const signature = await ui.signTyped("PatientNumberLink", message, domainInfo);
    return { patient: state.address, hospital, mrn, linked, issued_at: message.issuedAt, deadline: message.deadline,
             signature };
  }

  async function unlink(button, hospital, name) {
    await guarded(button, async () => {
      const statement = await signStatement(hospital, "", false);
      if (!statement) return status("");
      await api("/v1/patient-links/removals", { method: "POST", body: statement });
      await loadLinks();
      status(t("hospitals.removed", { hospital: name }));
    });
  }

  // a QR code of ``text`` on the canvas ``canvasId`` (what a desk's scanner reads)
  function drawCode(text, canvasId = "register-qr") {
    const code = qrcode(0, "M");
    code.addData(text);
    code.make();
    const modules = code.getModuleCount();
    const size = (modules + 2 * QR_BORDER) * QR_SCALE;
    const canvas = $(canvasId);
    canvas.width = size;
    canvas.height = size;
    canvas.dataset.payload = text;
    const context = canvas.getContext("2d");
    context.fillStyle = "#fff";
    context.fillRect(0, 0, size, size);
    context.fillStyle = "#000";
    for (let row = 0; row < modules; row += 1) {
      for (let column = 0; column < modules; column += 1) {
        if (code.isDark(row, column)) {
          context.fillRect((column + QR_BORDER) * QR_SCALE, (row + QR_BORDER) * QR_SCALE, QR_SCALE, QR_SCALE);
        }
      }
    }
  }

  async function register(event) {
    event.preventDefault();
    const mrn = $("register-mrn").value.trim();
    if (!MRN.test(mrn)) return showError(t("hospitals.bad_mrn"));
    const hospital = $("register-hospital").value;
    await guarded(event.submitter, async () => {
      const statement = await signStatement(hospital, mrn, true);
      if (!statement) return status("");
      drawCode(JSON.stringify(statement));
      const name = ui.memberName(hospital);
      if (hospital.toLowerCase() === config.node.account.toLowerCase()) {
        const offer = await api("/v1/patient-links/offers", { method: "POST", body: statement });
        $("register-note").textContent = t("hospitals.short");
        $("register-short").textContent = offer.code;
      } else {
        $("register-note").textContent = t("hospitals.short_elsewhere", { hospital: name });
        $("register-short").textContent = "";
      }
      $("register-expiry").textContent = t("hospitals.valid_until", { time: ui.when(statement.deadline) });
      $("register-code").hidden = false;
    });
  }

  $("inbox-mark-read").addEventListener("click", markRead);
  $("request-form").addEventListener("submit", approve);
  $("request-cancel").addEventListener("click", closeApproval);
  $("register-form").addEventListener("submit", register);
  return { loadInbox, loadLinks, refreshCount, drawCode };
}
