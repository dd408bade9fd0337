"""Every problem code the node answers with, what it means and how to fix it, in English and Chinese.

The ``type`` of every problem response is ``<node public URL>/problems/<code>``, served from this
catalogue by ``ledger_api.problems`` (one short page per code). Codes are stable: a client may
switch on them. One code per cause; the HTTP status says the kind:

- **400**: the request cannot be read as sent: its syntax (JSON, query string, a header's format,
  Content-Length). Fix the encoding.
- **422**: the request was read, but a value in it (path, query, header or body field) breaks its
  schema or a rule of the operation. ``field`` names it. Fix the value.
- 401 who is asking is not established; 403 known but not allowed; 404/410 not here; 409 the state
  on the node or the chain does not allow it now; 413/415 size and type; 429 slow down (see
  ``Retry-After``); 5xx the node or something it depends on failed (retry after ``Retry-After``).

A test keeps this catalogue and the code base in step: every code raised has an entry here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProblemType:
    status: int
    title: str
    what: str
    fix: str
    title_zh: str
    what_zh: str
    fix_zh: str


P = ProblemType
_RETRY = ("Retry after the number of seconds in Retry-After.", "按 Retry-After 给出的秒数后重试。")
CATALOGUE: dict[str, ProblemType] = {
    # ------------------------------------------------------------------ 400: cannot be read
    "bad-request": P(400, "Bad request", "The request could not be read.", "Check the request against the API document.",
                     "请求错误", "无法读取该请求。", "对照 API 文档检查请求。"),
    "json-malformed": P(400, "Body is not valid JSON", "The body is not JSON, or not UTF-8, or holds a lone surrogate.",
                        "Send a UTF-8 JSON document.", "请求体不是有效的 JSON", "请求体不是 JSON、不是 UTF-8 或含孤立代理字符。",
                        "发送 UTF-8 编码的 JSON。"),
    "json-too-deep": P(400, "JSON nested too deeply", "The body nests arrays or objects more than 64 levels deep.",
                       "Flatten the document; no MedLedger body needs more than a few levels.", "JSON 嵌套过深",
                       "请求体的数组或对象嵌套超过 64 层。", "减少嵌套层级。"),
    "json-duplicate-key": P(400, "JSON names a key twice", "An object in the body names the same key twice; which one "
                            "was meant is ambiguous.", "Send each key once.", "JSON 键重复", "请求体中同一对象出现重复键。",
                            "每个键只出现一次。"),
    "query-repeated-key": P(400, "Query parameter given twice", "A query parameter appears more than once.",
                            "Give each query parameter once.", "查询参数重复", "同一查询参数出现多次。", "每个查询参数只给一次。"),
    "query-not-utf8": P(400, "Query string not ASCII or UTF-8", "The query string holds raw non-ASCII bytes, or its "
                        "percent-encoding does not decode to UTF-8.", "Percent-encode UTF-8 (docs/request-signature.md).",
                        "查询字符串编码错误", "查询字符串含非 ASCII 字节，或百分号解码后不是 UTF-8。", "以 UTF-8 进行百分号编码。"),
    "content-length-invalid": P(400, "Content-Length is not a number", "The Content-Length header is not a number.",
                                "Send a decimal Content-Length, or none.", "Content-Length 无效",
                                "Content-Length 头不是数字。", "发送十进制 Content-Length，或不发送。"),
    "header-malformed": P(400, "Header malformed", "A header's value is not in its documented format.",
                          "See the operation's header description.", "请求头格式错误", "某个请求头的值不符合文档格式。",
                          "参照该操作的请求头说明。"),
    # ------------------------------------------------------------------ 422: a value is not acceptable
    "validation-error": P(422, "Invalid value", "A path, query, header or body value breaks its schema (type, "
                          "pattern, range, required). `field` names it; `errors` lists all.", "Fix the named field.",
                          "取值无效", "路径、查询、请求头或请求体中的某个值不符合其模式。`field` 指出该字段。", "修正所指字段。"),
    "siwe-message-malformed": P(422, "Not an EIP-4361 message", "The sign-in message does not follow the EIP-4361 "
                                "grammar; the detail names the line.", "Build the message with a SIWE library.",
                                "不是 EIP-4361 消息", "登录消息不符合 EIP-4361 语法，详情指出出错的行。", "用 SIWE 库生成消息。"),
    "signature-deadline-passed": P(422, "Signature deadline passed", "The patient's signed consent message has a "
                                   "deadline in the past; the contract would refuse it.",
                                   "Ask the patient to sign again with a later deadline.", "签名已过期限",
                                   "患者签名消息的截止时间已过，合约会拒绝。", "请患者以更晚的截止时间重新签名。"),
    "signature-malleable": P(422, "High-s signature", "The signature's s value is in the upper half of the curve order "
                             "(EIP-2); the contract accepts only the lower-s form.", "Sign with a standard wallet or "
                             "library, which produce low-s signatures.", "签名 s 值过高", "签名的 s 值位于曲线阶的上半部分"
                             "（EIP-2），合约只接受低 s 形式。", "使用标准钱包或库签名。"),
    "consent-signature-malformed": P(422, "Consent signature malformed", "The EIP-712 signature is not a valid "
                                     "signature, or its v is not 27/28 (or 0/1).", "Send {v, r, s} or the 65-byte hex "
                                     "string a wallet returns.", "授权签名格式错误", "EIP-712 签名无效，或 v 不是 27/28（或 0/1）。",
                                     "发送 {v, r, s} 或钱包返回的 65 字节十六进制串。"),
    "siwe-signature-malformed": P(422, "Sign-in signature malformed", "The sign-in signature is not 65 bytes of hex "
                                  "or not a valid signature.", "Send the wallet's personal_sign output.",
                                  "登录签名格式错误", "登录签名不是 65 字节十六进制或无效。", "发送钱包 personal_sign 的输出。"),
    "consent-window-invalid": P(422, "Consent window invalid", "valid_until must be in the future and after "
                                "valid_from.", "Choose a window that ends in the future.", "授权时间窗无效",
                                "valid_until 必须晚于现在且晚于 valid_from。", "选择一个未来结束的时间窗。"),
    "grantee-not-member": P(422, "Grantee is not an active member", "The grantee is not an active consortium member.",
                            "Grant to a member listed by GET /v1/consortium/members.", "被授权方不是有效成员",
                            "被授权方不是联盟的有效成员。", "授权给 GET /v1/consortium/members 列出的成员。"),
    "delegate-is-patient": P(422, "Patient cannot be own delegate", "A patient cannot appoint themselves as delegate.",
                             "Name another account.", "患者不能成为自己的代理人", "患者不能指定自己为代理人。", "指定其他账户。"),
    "self-handover": P(422, "Handover to itself", "A member cannot hand records over to itself.",
                       "Name another member.", "不能移交给自己", "成员不能把记录移交给自己。", "指定其他成员。"),
    "webhook-url-refused": P(422, "Webhook URL refused", "The notification URL is not allowed by this node's receiver "
                             "policy (scheme, host or address).", "Use an https URL on an allowed host.",
                             "回调地址被拒绝", "通知地址不符合本节点的接收方策略。", "使用允许主机上的 https 地址。"),
    "auditor-events-limited": P(422, "Event type not for auditors", "Auditors subscribe only to the audit event types.",
                                "Subscribe to the listed event types.", "审计员不可订阅该事件", "审计员只能订阅审计事件类型。",
                                "订阅所列事件类型。"),
    "proposal-incomplete": P(422, "Proposal incomplete", "The governance action needs more fields.",
                             "Give the fields the detail names.", "提案不完整", "该治理操作缺少字段。", "补齐详情所列字段。"),
    "custodian-is-self": P(422, "This node is the custodian", "The record is held by this node itself.",
                           "Fetch it with GET /v1/records/{id}/content.", "本节点即为保管方", "该记录由本节点保管。",
                           "使用 GET /v1/records/{id}/content 获取。"),
    "anchor-missing": P(422, "Version not anchored", "The handed-over version is not anchored on chain.",
                        "Anchor it first; hand over only anchored versions.", "版本未上链锚定", "移交的版本未在链上锚定。",
                        "先锚定再移交。"),
    "anchor-mismatch": P(422, "Does not match the anchor", "Patient or category differ from the record's anchor.",
                         "Send the record's anchored patient and category.", "与锚定不符", "患者或类别与链上锚定不一致。",
                         "发送与锚定一致的患者和类别。"),
    "ciphertext-mismatch": P(422, "Ciphertext does not match its hash", "The ciphertext's hash is not the one anchored "
                             "on chain.", "Send the stored ciphertext unchanged.", "密文与哈希不符",
                             "密文哈希与链上锚定不一致。", "原样发送存储的密文。"),
    "wrapped-key-invalid": P(422, "Wrapped key does not open", "The wrapped data key cannot be opened with this node's "
                             "keys.", "Wrap the key for this node's current HPKE key.", "封装密钥无法打开",
                             "本节点的密钥无法打开该封装的数据密钥。", "用本节点当前的 HPKE 公钥封装。"),
    # ------------------------------------------------------------------ 401: who is asking
    "unauthenticated": P(401, "Authentication required", "The request carries neither a member signature nor a patient "
                         "session.", "Sign the request (docs/request-signature.md) or sign in as a patient.",
                         "需要认证", "请求既没有成员签名也没有患者会话。", "对请求签名，或以患者身份登录。"),
    "signature-header-missing": P(401, "Signature header missing", "One of the five X-MedLedger-* signature headers is "
                                  "missing.", "Send all five headers.", "缺少签名头", "缺少五个 X-MedLedger-* 签名头之一。",
                                  "发送全部五个签名头。"),
    "signature-header-malformed": P(401, "Signature header malformed", "The timestamp is not unix seconds in digits, "
                                    "or the nonce is not 16 to 128 lowercase hex characters.", "Follow section 1 of "
                                    "docs/request-signature.md.", "签名头格式错误", "时间戳不是数字形式的 Unix 秒，或随机数"
                                    "不是 16 到 128 个小写十六进制字符。", "按签名规范第 1 节发送。"),
    "signature-outside-window": P(401, "Signature too old or too new", "The signed timestamp is outside the node's "
                                  "window (default 60 s).", "Synchronise the signer's clock (NTP) and sign just before "
                                  "sending.", "签名时间超出窗口", "签名时间戳超出节点允许的窗口（默认 60 秒）。",
                                  "用 NTP 同步签名方时钟，发送前即时签名。"),
    "signature-malformed": P(401, "Signature malformed", "The signature is not 65 bytes of hex, its v is not 27/28 "
                             "(or 0/1), or its s is high.", "Send r || s || v as 130 hex characters from a standard "
                             "library.", "签名格式错误", "签名不是 65 字节十六进制，v 不是 27/28（或 0/1），或 s 过高。",
                             "用标准库输出 130 个十六进制字符的 r||s||v。"),
    "signature-mismatch": P(401, "Signature does not match", "The signature does not recover to X-MedLedger-Signer over "
                            "the base this node computes. The detail names the chain id and audience it used.",
                            "Check the chain id, the audience (this node's account, lowercase), the canonical query and "
                            "the method against the vectors.", "签名不匹配", "按本节点计算的签名基串，签名恢复出的账户"
                            "不是 X-MedLedger-Signer。详情给出节点使用的链 ID 和受众。", "对照测试向量检查链 ID、受众、"
                            "规范化查询和方法。"),
    "signer-not-member": P(401, "Signer is not a member", "The signer is not registered in the consortium registry.",
                           "Sign with a member's key.", "签名方不是成员", "签名方未在联盟注册表中登记。", "用成员密钥签名。"),
    "signature-replayed": P(401, "Nonce already used", "A request with this signer and nonce was already accepted.",
                            "Sign every request, retries included, with a new nonce.", "随机数已被使用",
                            "该签名方和随机数的请求已被接受过。", "每个请求（包括重试）使用新的随机数。"),
    "body-digest-mismatch": P(401, "Body does not match its digest", "The body received does not hash to "
                              "X-MedLedger-Content-SHA256.", "Hash exactly the bytes sent.", "请求体与摘要不符",
                              "收到的请求体哈希与 X-MedLedger-Content-SHA256 不一致。", "对实际发送的字节求哈希。"),
    "session-invalid": P(401, "Session unknown or expired", "The bearer token is not a live patient session.",
                         "Sign in again.", "会话无效或已过期", "Bearer 令牌不是有效的患者会话。", "重新登录。"),
    "siwe-domain-mismatch": P(401, "Sign-in for another domain", "The message's domain (or scheme) is not this "
                              "node's.", "Use the domain from POST /v1/auth/challenge.", "登录域名不符",
                              "消息中的域名（或协议）不是本节点的。", "使用 POST /v1/auth/challenge 返回的域名。"),
    "siwe-chain-mismatch": P(401, "Sign-in for another chain", "The message's Chain ID is not the consortium's.",
                             "Use the chain id from the challenge.", "登录链 ID 不符", "消息中的链 ID 不是联盟链的。",
                             "使用挑战返回的链 ID。"),
    "siwe-uri-not-allowed": P(401, "Sign-in URI not allowed", "The message's URI is not on this node's public origin.",
                              "Use the URI from the challenge.", "登录 URI 不被允许", "消息中的 URI 不在本节点的公开源上。",
                              "使用挑战返回的 URI。"),
    "siwe-expired": P(401, "Sign-in message expired", "The message's Expiration Time has passed.",
                      "Sign a new message.", "登录消息已过期", "消息的过期时间已过。", "签署新的消息。"),
    "siwe-not-yet-valid": P(401, "Sign-in message not valid yet", "Issued At is ahead of the node's clock by more "
                            "than 60 s, or Not Before has not come.", "Check the device clock.", "登录消息尚未生效",
                            "签发时间超前节点时钟 60 秒以上，或尚未到生效时间。", "检查设备时钟。"),
    "siwe-signature-mismatch": P(401, "Sign-in signature mismatch", "The signature is not by the address in the "
                                 "message.", "Sign with the account named in the message.", "登录签名不符",
                                 "签名不是消息中地址所签。", "用消息中所列账户签名。"),
    "siwe-nonce-unknown": P(401, "Sign-in nonce unknown or used", "The nonce was not issued by this node, was used, or "
                            "expired.", "Ask POST /v1/auth/challenge for a new nonce.", "登录随机数无效",
                            "随机数不是本节点签发、已使用或已过期。", "向 POST /v1/auth/challenge 申请新随机数。"),
    "proof-malformed": P(401, "Patient proof malformed", "The X-MedLedger-On-Behalf-Of value cannot be read.",
                         "Forward the proof exactly as the patient's node issued it.", "患者凭证格式错误",
                         "X-MedLedger-On-Behalf-Of 无法读取。", "原样转发患者节点签发的凭证。"),
    "proof-ended": P(401, "Patient signed out", "The patient ended the session this proof came from.",
                     "The patient signs in again.", "患者已退出", "患者已结束该凭证对应的会话。", "患者重新登录。"),
    "proof-wrong-chain": P(401, "Proof for another chain", "The patient's proof names another chain.",
                           "Use a proof from this consortium.", "凭证属于其他链", "患者凭证指向其他链。", "使用本联盟的凭证。"),
    "proof-expired": P(401, "Patient proof expired", "The patient's proof has expired.", "The patient signs in again.",
                       "患者凭证已过期", "患者凭证已过期。", "患者重新登录。"),
    "proof-not-yet-valid": P(401, "Patient proof not valid yet", "The proof is not valid yet.", "Check clocks.",
                             "患者凭证尚未生效", "凭证尚未生效。", "检查时钟。"),
    "proof-lifetime-too-long": P(401, "Patient proof too long-lived", "Proofs may last at most the node's maximum.",
                                 "Sign in with a shorter Expiration Time.", "凭证有效期过长", "凭证有效期超过节点上限。",
                                 "以更短的过期时间登录。"),
    "proof-signature-invalid": P(401, "Patient proof signature invalid", "The proof is not signed by the account it "
                                 "names.", "Forward the proof unchanged.", "凭证签名无效", "凭证不是其所列账户签名。",
                                 "原样转发凭证。"),
    # ------------------------------------------------------------------ 403: not allowed
    "forbidden": P(403, "Forbidden", "The caller is known but not allowed to do this.", "Ask as a caller who may.",
                   "禁止访问", "调用方身份已知，但无权执行该操作。", "由有权限的调用方发起。"),
    "role-not-allowed": P(403, "Not for this kind of caller", "This operation is not open to the caller's role "
                          "(patient, member, this node's own system, auditor).", "See the operation's security in the "
                          "API document.", "角色无权执行", "该操作不对调用方的角色开放。", "参见 API 文档中该操作的安全要求。"),
    "patient-scope": P(403, "Another patient's data", "Patients (and delegates) reach only their own data.",
                       "Ask for your own account, or one you are delegate for.", "他人数据", "患者（及代理人）只能访问自己的数据。",
                       "访问自己或所代理患者的数据。"),
    "member-scope": P(403, "Another member's log", "A member reads and exports only its own access log.",
                      "Ask for your own log.", "其他成员的日志", "成员只能读取和导出自己的访问日志。", "只请求自己的日志。"),
    "signer-not-active": P(403, "Membership not active", "The signer's membership is suspended or has ended.",
                           "Ask the consortium to reinstate the membership.", "成员资格无效", "签名方成员资格已暂停或终止。",
                           "请联盟恢复成员资格。"),
    "consent-denied": P(403, "No consent covers this access", "No consent covers this requester, category, purpose and "
                        "time, and no break-glass is declared.", "Ask the patient for consent, or declare an emergency "
                        "if one exists.", "无授权", "没有覆盖该请求方、类别、目的和时间的授权，也未声明紧急访问。",
                        "请患者授权，或在确有紧急情况时声明紧急访问。"),
    "signature-wrong-signer": P(403, "Signature not by the patient", "Under this consortium's EIP-712 domain the "
                                "signature recovers to an account that is neither the patient nor a delegate. A "
                                "signature for another chain id or contract does this; `expected_chain_id` and "
                                "`expected_verifying_contract` give the right domain.", "Sign with the domain from GET "
                                "/v1/patients/{patient}/signing-domain.", "签名者不是患者", "在本联盟的 EIP-712 域下，"
                                "签名恢复出的账户既不是患者也不是代理人；为其他链或合约所签即会如此。",
                                "使用 GET /v1/patients/{patient}/signing-domain 返回的域重新签名。"),
    "proof-read-only": P(403, "Patient proof is read-only", "A relayed patient proof allows reading only.",
                         "The patient acts at their own node.", "患者凭证只读", "转发的患者凭证仅允许读取。", "患者在自己的节点操作。"),
    "proof-not-consortium-view": P(403, "Sign-in did not allow the consortium view", "The patient's sign-in did not "
                                   "include the consortium-view resource.", "Sign in with that resource.",
                                   "登录未授权联盟视图", "患者登录时未包含联盟视图资源。", "登录时包含该资源。"),
    "proof-wrong-member": P(403, "Proof presented by another member", "The patient signed in at another member than "
                            "the one presenting the proof.", "Only that member presents it.", "凭证出示方不符",
                            "患者登录的成员不是出示凭证的成员。", "由患者登录的成员出示。"),
    "handover-not-agreed": P(403, "No handover agreement", "This member has not agreed to take records from the caller.",
                             "The successor's own system agrees first (POST /v1/agreements).", "无移交协议",
                             "本成员未同意接收调用方的记录。", "接收方先通过 POST /v1/agreements 同意。"),
    "handover-agreement-ended": P(403, "Handover agreement ended", "The agreement expired or was withdrawn.",
                                  "Agree again.", "移交协议已终止", "协议已过期或被撤回。", "重新达成协议。"),
    "not-the-custodian": P(403, "Not the custodian", "The chain names another member as the record's custodian.",
                           "Only the custodian hands a record over.", "不是保管方", "链上记录的保管方是其他成员。",
                           "只有保管方才能移交记录。"),
    "subscription-right-ended": P(403, "Right to subscription ended", "You no longer have the right to this "
                                  "subscription's notifications; it has ended.", "Subscribe again if entitled.",
                                  "订阅权限已终止", "你已无权接收该订阅的通知，订阅已结束。", "如有权限请重新订阅。"),
    # ------------------------------------------------------------------ 404 / 405 / 410
    "not-found": P(404, "Not found", "Nothing is at this address.", "Check the path.", "未找到", "该地址下没有内容。", "检查路径。"),
    "record-not-found": P(404, "No such record here", "This member holds no record with this id.",
                          "Ask the custodian the chain names.", "无此记录", "本成员没有该 ID 的记录。", "向链上所列保管方请求。"),
    "record-erased": P(404, "Record erased", "The record was erased and its keys destroyed.", "Nothing can restore it.",
                       "记录已删除", "记录已被删除，其密钥已销毁。", "无法恢复。"),
    "version-not-found": P(404, "No such version", "The record has no such version.", "List the record's versions.",
                           "无此版本", "该记录没有此版本。", "查看记录的版本列表。"),
    "consent-not-found": P(404, "No such consent", "No consent with this id exists on chain.", "Check the consent id.",
                           "无此授权", "链上不存在该 ID 的授权。", "检查授权 ID。"),
    "relay-not-found": P(404, "No such relay", "No relay with this id is visible to you.", "Check the relay id.",
                         "无此转发", "没有你可见的该 ID 转发。", "检查转发 ID。"),
    "subscription-not-found": P(404, "No such subscription", "You hold no subscription with this id.",
                                "List your subscriptions.", "无此订阅", "你没有该 ID 的订阅。", "查看你的订阅列表。"),
    "agreement-not-found": P(404, "No such agreement", "No handover agreement with this id.", "List agreements.",
                             "无此协议", "没有该 ID 的移交协议。", "查看协议列表。"),
    "handover-not-found": P(404, "No such handover", "No handover with this id.", "Check the id.", "无此移交",
                            "没有该 ID 的移交。", "检查 ID。"),
    "break-glass-not-found": P(404, "No such break-glass declaration", "No declaration with this id by this member.",
                               "Check the id.", "无此紧急访问声明", "本成员没有该 ID 的声明。", "检查 ID。"),
    "member-not-found": P(404, "No such member node", "The account is not an active member with a node.",
                          "Check GET /v1/consortium/members.", "无此成员节点", "该账户不是有节点的有效成员。",
                          "查看 GET /v1/consortium/members。"),
    "api-docs-off": P(404, "API docs page off", "This node does not serve the documentation page.",
                      "Read /openapi.json instead.", "API 文档页已关闭", "本节点不提供文档页面。", "改读 /openapi.json。"),
    "method-not-allowed": P(405, "Method not allowed", "The path exists but not with this method.",
                            "See the API document.", "方法不允许", "该路径不支持此方法。", "参见 API 文档。"),
    "custody-moved": P(410, "Custody moved", "The record was handed over to another member.", "Ask its successor.",
                       "保管已转移", "记录已移交给其他成员。", "向继任者请求。"),
    # ------------------------------------------------------------------ 409: state does not allow it now
    "conflict": P(409, "Conflict", "The current state does not allow this.", "Read the state and retry.", "冲突",
                  "当前状态不允许此操作。", "读取状态后重试。"),
    "nonce-stale": P(409, "Nonce already used", "The patient's signature is for a nonce that is already used.",
                     "Ask the patient to sign again with the nonce from GET /v1/patients/{patient}/signing-domain.",
                     "随机数已使用", "患者签名所用的随机数已被使用。", "以 signing-domain 返回的随机数重新签名。"),
    "nonce-ahead": P(409, "Nonce ahead of the chain", "The signature is for a nonce after the patient's next one.",
                     "Relay the earlier signatures first, or sign for the next nonce.", "随机数超前",
                     "签名所用随机数晚于患者的下一个随机数。", "先转发更早的签名，或以下一个随机数签名。"),
    "nonce-pending": P(409, "A relay for this nonce is on its way", "Another relay for the patient's same nonce is "
                       "pending; only one could land. `relay_id` names it.", "Follow GET /v1/relays/{relay_id}.",
                       "该随机数已有转发在途", "该患者同一随机数已有转发在处理中，只有一个能上链。`relay_id` 指出它。",
                       "跟踪 GET /v1/relays/{relay_id}。"),
    "consent-already-revoked": P(409, "Consent already revoked", "The consent is already revoked.", "Nothing to do.",
                                 "授权已撤销", "该授权已被撤销。", "无需操作。"),
    "record-in-handover": P(409, "Record being handed over", "The record is in a custody handover.",
                            "Retry after the handover completes.", "记录移交中", "该记录正在移交保管。", "移交完成后重试。"),
    "handover-running": P(409, "Handover already running", "A handover is already running on this node.",
                          "Follow the running handover.", "移交已在进行", "本节点已有移交在进行。", "跟踪进行中的移交。"),
    "handover-quota-reached": P(409, "Handover quota reached", "The agreed handover's records or bytes are used up.",
                                "Agree to a larger handover.", "移交配额已满", "协议约定的记录数或字节数已用完。", "约定更大的配额。"),
    "custody-return-unsupported": P(409, "Handover back not supported", "The record was held here before.",
                                    "Not supported.", "不支持移交回原节点", "该记录曾由本节点保管。", "不支持。"),
    "version-differs": P(409, "Different version stored", "A different version is already stored under this id.",
                         "Check the record.", "已存不同版本", "该 ID 下已存储不同的版本。", "检查该记录。"),
    "version-race": P(409, "Concurrent version", "A concurrent upload added this version first.", "Retry.",
                      "版本并发冲突", "并发上传已先添加该版本。", "重试。"),
    "subscription-limit": P(409, "Too many subscriptions", "You hold the most active subscriptions allowed.",
                            "End one first.", "订阅过多", "你的有效订阅已达上限。", "先结束一个订阅。"),
    "contract-reverted": P(409, "Rejected by the contract", "The chain refused the transaction; the detail names the "
                           "contract's error.", "Act on the named error.", "合约拒绝", "链拒绝了交易，详情给出合约错误。",
                           "按所列错误处理。"),
    # ------------------------------------------------------------------ 413 / 415 / 429
    "payload-too-large": P(413, "Payload too large", "The body exceeds the route's or the node's limit.",
                           "Send a smaller body.", "请求体过大", "请求体超过路由或节点上限。", "发送更小的请求体。"),
    "upload-too-large": P(413, "Upload too large", "The record exceeds the node's upload limit.",
                          "Split the record or ask the operator to raise the limit.", "上传过大", "记录超过节点上传上限。",
                          "拆分记录或请运维提高上限。"),
    "handover-bytes-exceeded": P(413, "Handover byte quota exceeded", "This version would pass the bytes the agreed "
                                 "handover allows.", "Agree to a larger handover.", "移交字节配额超出",
                                 "该版本将超出协议允许的字节数。", "约定更大的配额。"),
    "unsupported-media-type": P(415, "Unsupported media type", "The Content-Type is not the one this operation reads.",
                                "Send the documented Content-Type.", "不支持的媒体类型", "Content-Type 不是该操作接受的类型。",
                                "发送文档所列的 Content-Type。"),
    "too-many-requests": P(429, "Too many requests", "The caller asked too often.", *_RETRY[:1], "请求过多",
                           "调用方请求过于频繁。", _RETRY[1]),
    "challenge-rate-limited": P(429, "Too many sign-in challenges", "This client asked for too many challenges.",
                                *_RETRY[:1], "登录挑战过多", "该客户端申请挑战过多。", _RETRY[1]),
    "challenge-backlog-full": P(429, "Sign-in backlog full", "The node holds too many unanswered challenges.",
                                *_RETRY[:1], "登录挑战积压", "节点未回应的挑战过多。", _RETRY[1]),
    "node-busy": P(429, "Node busy", "The node has too much of this work in flight.", *_RETRY[:1], "节点繁忙",
                   "节点该类工作过多。", _RETRY[1]),
    "caller-busy": P(429, "Too much in flight for you", "You have too many of these requests in flight.",
                     *_RETRY[:1], "在途请求过多", "你的此类在途请求过多。", _RETRY[1]),
    # ------------------------------------------------------------------ 5xx: the node or what it depends on
    "internal-error": P(500, "Internal error", "The node failed unexpectedly; it was logged.",
                        "Retry; if it persists, tell the node's operator the time.", "内部错误",
                        "节点意外失败，已记录日志。", "重试；如持续出现，把时间告知运维。"),
    "http-error": P(500, "HTTP error", "The HTTP layer refused the request.", "See the detail.", "HTTP 错误",
                    "HTTP 层拒绝了请求。", "参见详情。"),
    "integrity-violation": P(500, "Stored data does not match its anchor", "Data held here does not match the chain.",
                             "Tell the node's operator: the record is withheld until repaired.", "数据与锚定不符",
                             "本地数据与链上锚定不一致。", "告知运维：修复前该记录不予提供。"),
    "stored-ciphertext-mismatch": P(500, "Stored ciphertext altered", "The ciphertext held here does not hash to its "
                                    "anchor; it is withheld.", "Tell the node's operator.", "存储密文被改动",
                                    "本地密文与锚定哈希不一致，不予提供。", "告知运维。"),
    "ciphertext-missing": P(500, "Ciphertext missing", "The record's ciphertext is missing from storage.",
                            "Tell the node's operator.", "密文缺失", "存储中缺少记录密文。", "告知运维。"),
    "anchor-conflict": P(500, "Another anchor under this id", "The chain holds a different anchor for this record.",
                         "Tell the node's operator.", "锚定冲突", "链上该记录有不同的锚定。", "告知运维。"),
    "peer-answer-mismatch": P(500, "Custodian's answer does not match", "The custodian's answer does not match the "
                              "chain; it was not passed on.", "Tell both members' operators.", "保管方应答不符",
                              "保管方应答与链上不一致，未转交。", "告知双方运维。"),
    "transaction-failed": P(502, "Transaction failed", "A transaction failed without a decodable reason.", "Retry.",
                            "交易失败", "交易失败且无法解码原因。", "重试。"),
    "chain-unavailable": P(503, "Chain unavailable", "The chain node did not answer; nothing was written.", *_RETRY[:1],
                           "链不可用", "链节点未响应，未写入任何内容。", _RETRY[1]),
    "database-unavailable": P(503, "Database unavailable", "The node's database did not answer; nothing was written.",
                              *_RETRY[:1], "数据库不可用", "节点数据库未响应，未写入任何内容。", _RETRY[1]),
    "peer-unavailable": P(503, "Member node unavailable", "Another member's node did not answer in time.", *_RETRY[:1],
                          "成员节点不可用", "其他成员节点未及时响应。", _RETRY[1]),
    "custody-transfer-failed": P(503, "Custody transfer failed", "The custody transfer failed on chain.",
                                 "Start the handover again.", "保管转移失败", "链上保管转移失败。", "重新开始移交。"),
    "custody-transfer-pending": P(503, "Custody transfer pending", "The custody transfer is not confirmed yet.",
                                  "Start the handover again to resume.", "保管转移待确认", "保管转移尚未确认。",
                                  "重新开始移交以继续。"),
    "deployment-mismatch": P(503, "Contracts not found", "The chain does not hold the contracts the manifest names.",
                             "Check the node's chain settings.", "合约不存在", "链上没有清单所列合约。", "检查节点链配置。"),
    "assets-missing": P(503, "Portal not built", "The portal's front-end files are missing.", "Run make deps.",
                        "门户未构建", "门户前端文件缺失。", "运行 make deps。"),
}


def status_of(code: str) -> int:
    return CATALOGUE[code].status
