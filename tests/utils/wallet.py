"""A browser wallet for the portal's tests and benchmarks (no extension: a script the page gets first)."""

#: an EIP-1193 wallet injected into the page, as a browser extension would: it holds its own key and
#: signs with the same ethers library (loaded from the node's origin, as the page's CSP allows)
WALLET = """
(() => {
  const key = "%s";
  let wallet;
  const load = async () => wallet ??= new (await import("/portal/static/vendor/ethers.min.js")).Wallet(key);
  window.ethereum = {
    isMetaMask: false,
    calls: [],
    on() {}, removeListener() {},
    async request({ method, params }) {
      const w = await load();
      window.ethereum.calls.push(method);
      const { getBytes, toUtf8String, TypedDataEncoder } = await import("/portal/static/vendor/ethers.min.js");
      switch (method) {
        case "eth_chainId": return "0x" + (%d).toString(16);
        case "net_version": return String(%d);
        case "eth_accounts": case "eth_requestAccounts": return [w.address];
        case "personal_sign": return w.signMessage(getBytes(params[0]));
        case "eth_signTypedData_v4": {
          const data = JSON.parse(params[1]);
          const types = { ...data.types };
          delete types.EIP712Domain;
          return w.signTypedData(data.domain, types, data.message);
        }
        default: throw Object.assign(new Error("unsupported " + method), { code: 4200 });
      }
    },
  };
})();
"""


def wallet_script(key_hex: str, chain_id: int) -> str:
    """The wallet's init script for a page, holding ``key_hex`` on chain ``chain_id``."""
    return WALLET % (key_hex, chain_id, chain_id)
