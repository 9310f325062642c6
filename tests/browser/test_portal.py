"""The portal in a real browser: the gateway binary and the mock upstream as processes, seeded
with real proxied requests, then every view loaded in headless Chromium by portal.mjs; and a
second gateway with an admin token, for the portal's token flow.

Installs playwright-core (the version pinned in package.json) into target/browser-node, and
Debian's chromium when it is absent. Screenshots (1280x800) go to docs/screenshots/. Usage:
    python3 tests/browser/test_portal.py <path to llm-gateway> <path to mock-upstream>
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GATEWAY_BIN, MOCK_BIN = (os.path.abspath(p) for p in sys.argv[1:3])
NODE_DIR = os.path.join(ROOT, "target", "browser-node")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, body=None, headers=None, with_headers=False):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            answer = (r.status, json.loads(r.read() or b"null"))
            return (*answer, r.headers) if with_headers else answer
    except urllib.error.HTTPError as e:
        return (e.code, None, e.headers) if with_headers else (e.code, None)


def install():
    if not shutil.which("chromium"):
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=True)
    os.makedirs(NODE_DIR, exist_ok=True)
    shutil.copy(os.path.join(HERE, "package.json"), os.path.join(NODE_DIR, "package.json"))
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "playwright-core")):
        subprocess.run(["npm", "install", "--prefix", NODE_DIR, "--no-audit", "--no-fund", "--loglevel=error"], check=True)


def start_gateway(procs, work, name, config):
    """Starts a gateway on `config` (plus a ledger of its own in `work`) on a free port, added to
    `procs`; answers its base URL once /health answers. Its log is `work`/`name`.log."""
    path = os.path.join(work, f"{name}.toml")
    with open(path, "w") as f:
        f.write(config + f"""
[database]
url = "sqlite://{work}/{name}.db?mode=rwc"
spool_dir = "{work}/{name}-spool"
""")
    port = free_port()
    log = open(os.path.join(work, f"{name}.log"), "w")
    procs.append(subprocess.Popen([GATEWAY_BIN, "--config", path, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT))
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            call(f"{base}/health")
            return base
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the gateway {name} did not start")


def main():
    install()
    work = tempfile.TemporaryDirectory()
    mock = subprocess.Popen([MOCK_BIN], stdout=subprocess.PIPE, text=True)
    procs = [mock]
    try:
        mock_url = f"http://127.0.0.1:{mock.stdout.readline().strip()}"
        base = start_gateway(procs, work.name, "gateway", f"""
# Down (nothing listens on port 9): requests it is tried for fail over to the next provider,
# and its breaker opens after a few.
[[providers]]
id = "openai-down"
provider_type = "openai"
api_key = "sk-provider-down"
endpoint = "http://127.0.0.1:9/v1"

[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-provider-openai"
endpoint = "{mock_url}/v1"
models = ["mock-sql-writer"]

[[providers]]
id = "anthropic"
provider_type = "anthropic"
api_key = "sk-ant-provider"
endpoint = "{mock_url}"

[key_map.team-alpha-key]
label = "Team Alpha"
openai_key = "sk-alpha"
anthropic_key = "sk-ant-alpha"
max_budget_usd = 5.0
budget_period = "monthly"
rpm = 100

# Refused by the limits, for the Overview's budget and rate-limit counts.
[key_map.team-broke-key]
label = "Team Broke"
max_budget_usd = 0.0

[key_map.team-slow-key]
label = "Team Slow"
rpm = 1

[sanitization]
enabled = true
redact_pii = true

# The mock's SQL writer answers the Ask view's questions.
[analytics]
model = "mock-sql-writer"
""")

        # Seed: answered calls from two tools and projects (gpt-4o ones first tried on the
        # provider that is down), one with a virtual key, an e-mail address for the sanitizer,
        # an Anthropic call, one the upstream fails, one refused for a spent budget and one
        # past a rate limit.
        chat = lambda text: {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}
        seeds = [
            ("/v1/chat/completions", chat("hello"), {"x-source": "cli", "x-project": "apollo"}),
            ("/v1/chat/completions", chat("write to me@example.com"), {"x-source": "cli", "x-project": "apollo"}),
            ("/v1/chat/completions", chat("summarise"), {"x-source": "notebook", "x-project": "gemini", "Authorization": "Bearer team-alpha-key"}),
            ("/v1/messages", {"model": "claude-sonnet-4-20250514", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}, {"x-source": "claude-code", "x-project": "gemini"}),
            ("/v1/chat/completions", chat("fail"), {"x-source": "cli", "x-project": "apollo", "x-mock-status": "500"}),
            ("/v1/chat/completions", chat("spend"), {"x-source": "cli", "Authorization": "Bearer team-broke-key"}),
            ("/v1/chat/completions", chat("one"), {"x-source": "cli", "Authorization": "Bearer team-slow-key"}),
            ("/v1/chat/completions", chat("two"), {"x-source": "cli", "Authorization": "Bearer team-slow-key"}),
        ]
        answered = [call(base + path, body, headers, with_headers=True) for path, body, headers in seeds]
        claude_id = answered[3][2]["x-request-id"]
        for _ in range(100):
            _, records = call(f"{base}/v1/records")
            if records and len(records["data"]) >= len(seeds):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the seeded requests did not reach the ledger")
        # A quality signal about the Anthropic call, for the Records and Signals views. It needs
        # its request in the ledger (404 before), so it is reported until it is taken.
        for _ in range(100):
            status, _ = call(f"{base}/v1/signals", {"request_id": claude_id, "signal": "thumbs_up", "source": "browser-test"})
            _, report = call(f"{base}/v1/signals")
            if report and report["total"]["signals"] >= 1:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the signal did not reach the ledger ({status})")

        # A second gateway that asks for the admin token, with a budgeted key, for the portal's
        # token flow. Without the token /v1/keys is refused, so the browser cannot pass by chance.
        admin_token, key_token = "portal-admin-token", "team-token-key"
        token_base = start_gateway(procs, work.name, "token-gateway", f"""
[server]
admin_token = "{admin_token}"

[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-provider-openai"
endpoint = "{mock_url}/v1"

[key_map.{key_token}]
label = "Team Token"
max_budget_usd = 2.0
budget_period = "daily"
""")
        status, _ = call(f"{token_base}/v1/keys")
        if status not in (401, 403):
            raise RuntimeError(f"/v1/keys answered {status} without the admin token")

        shots = os.path.join(ROOT, "docs", "screenshots")
        env = {**os.environ, "BROWSER_NODE": NODE_DIR}
        result = subprocess.run(["node", os.path.join(HERE, "portal.mjs"), base, shots, token_base, admin_token, key_token], env=env)
        if result.returncode != 0:
            for name in ("gateway", "token-gateway"):
                print(open(os.path.join(work.name, f"{name}.log")).read()[-4000:], file=sys.stderr)
        sys.exit(result.returncode)
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)


if __name__ == "__main__":
    main()
