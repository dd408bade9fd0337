"""Security figures: what one hostile caller costs a node.

- ``security.oversize_body_rss_mb``: peak RSS growth of a real node process (``medledger serve``,
  one API process) while 1 GiB is sent as the body of the unauthenticated sign-in route, chunked
  (no Content-Length to refuse up front). Goal ≤ 32: the body is cut off at the route's 16 KiB limit
  while it streams, never buffered. Peak RSS is the kernel's high-water mark (``VmHWM``), reset
  before the send (``/proc/<pid>/clear_refs``).
- ``security.oversize_body_sent_mb``: how much of that gigabyte the node took before it answered 413.
- ``security.nested_json_survived``: 1 when the node still answers after a megabyte of nested brackets
  on a JSON route (it crashed with a segmentation fault before).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GOALS = {"security.oversize_body_rss_mb": ("<=", 32), "security.nested_json_survived": (">=", 1)}
GIB = 1024**3


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def run() -> dict[str, float]:
    from ledger_api.auth.signing import sign_headers
    from ledger_api.chain.backends import free_port
    from ledger_api.chain.devnet import start_devnet
    from ledger_api.cli.consortium import lone_member_env, wait_ready
    from tests.utils.raw_http import stream_body

    with tempfile.TemporaryDirectory(prefix="medledger-bench-security-") as tmp:
        data, rpc_port, port = Path(tmp), free_port(), free_port()
        devnet = start_devnet(data / "chain", port=rpc_port)
        env = lone_member_env(data, rpc_port=rpc_port, port=port)
        log = open(data / "node.log", "wb")
        node = subprocess.Popen(
            [sys.executable, "-m", "ledger_api.cli", "serve", f"--port={port}", "--workers=1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready({"node": url}, {"node": node}, timeout=60)
            pid = node.pid  # with one API process, ``medledger serve`` serves in its own process
            httpx.post(url + "/v1/auth/challenge", timeout=10)  # warm: the route's code paths loaded
            time.sleep(0.5)
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
            before_kb = _status_kb(pid, "VmRSS")
            answer = stream_body(port, "/v1/auth/session", total_bytes=GIB, chunk=b"x" * (1 << 20), timeout_s=120)
            peak_kb = _status_kb(pid, "VmHWM")
            member = devnet.identities["dapeng"]
            nested_body = b"[" * ((1 << 20) - 64)  # just under the JSON limit of a signed route: it is parsed
            headers = sign_headers(
                member.account,
                chain_id=devnet.manifest.chain_id,
                audience=member.address,
                method="POST",
                url=url + "/v1/emergency",
                digest=hashlib.sha256(nested_body).hexdigest(),
            )
            nested = httpx.post(
                url + "/v1/emergency",
                content=nested_body,
                timeout=30,
                headers={**headers, "content-type": "application/json"},
            )
            alive = httpx.get(url + "/healthz", timeout=10).status_code == 200 and node.poll() is None
            if answer.status != 413:
                print(f"  security: the oversize body got {answer.status}, not 413")
        finally:
            node.terminate()
            node.wait(timeout=30)
            log.close()
            devnet.backend.close()
    return {
        "security.oversize_body_rss_mb": round(max(0, peak_kb - before_kb) / 1024, 1),
        "security.oversize_body_sent_mb": round(answer.sent_bytes / (1 << 20), 1),
        "security.oversize_body_status": float(answer.status or 0),
        "security.nested_json_status": float(nested.status_code),
        "security.nested_json_survived": 1.0 if alive else 0.0,
    }


if __name__ == "__main__":
    print(run())
