"""Claude Code, headless, through the real gateway binary to the mock upstream.

Installs Claude Code into target/claude-code (npm, pinned, not global) when absent, starts the
mock upstream and the gateway as processes on free ports, then runs `claude -p` twice: a plain
prompt, and a tool-use round (the mock asks for the Bash tool, Claude Code runs it and sends the
result back). Steers the mock through ANTHROPIC_CUSTOM_HEADERS (the gateway forwards x-mock-*).

The upstream the gateway uses is chosen by CLAUDE_CODE_UPSTREAM (or --upstream):
  anthropic  an `anthropic` provider: Claude Code's Messages requests pass through (default);
  openai     ONLY an `openai` provider: the gateway must translate Messages -> Chat Completions.

Usage:
    python3 tests/clients/claude_code.py <llm-gateway> <mock-upstream> [--upstream anthropic|openai]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

CLAUDE_CODE_VERSION = "2.1.332"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INSTALL_DIR = os.path.join(ROOT, "target", "claude-code")
CLAUDE = os.path.join(INSTALL_DIR, "node_modules", ".bin", "claude")
# The model asked for, and the small/fast model of side calls: the same, to keep the config small.
MODEL = "claude-sonnet-4-5"
VIRTUAL_KEY = "claude-code-team-key"
EXPECTED = "chunk0 chunk1 chunk2"
RUN_TIMEOUT = 120

parser = argparse.ArgumentParser()
parser.add_argument("gateway")
parser.add_argument("mock")
parser.add_argument(
    "--upstream",
    choices=["anthropic", "openai"],
    default=os.environ.get("CLAUDE_CODE_UPSTREAM", "anthropic"),
)
ARGS, UNITTEST_ARGS = parser.parse_known_args()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def install_claude_code():
    """npm install into target/claude-code, once per pinned version."""
    if os.path.exists(CLAUDE):
        out = subprocess.run([CLAUDE, "--version"], capture_output=True, text=True, timeout=60)
        if out.stdout.startswith(CLAUDE_CODE_VERSION):
            return
    subprocess.run(
        ["npm", "install", "--prefix", INSTALL_DIR, "--no-audit", "--no-fund",
         f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"],
        check=True, timeout=600,
    )


def gateway_config(upstream, mock_url, directory):
    if upstream == "anthropic":
        provider = f"""
[[providers]]
id = "anthropic"
provider_type = "anthropic"
api_key = "sk-ant-provider"
endpoint = "{mock_url}"
models = ["{MODEL}"]
"""
    else:
        # Only an OpenAI-type provider: Claude Code's Messages requests must be translated.
        provider = f"""
[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-provider-openai"
endpoint = "{mock_url}/v1"
models = ["{MODEL}"]
"""
    return provider + f"""
[key_map.{VIRTUAL_KEY}]
label = "Claude Code"
anthropic_key = "sk-ant-claude-code"
openai_key = "sk-claude-code"

[database]
url = "sqlite://{directory}/ledger.db?mode=rwc"
spool_dir = "{directory}/spool"
"""


class ClaudeCodeTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        install_claude_code()
        cls.dir = tempfile.TemporaryDirectory()
        cls.mock = subprocess.Popen([ARGS.mock], stdout=subprocess.PIPE, text=True)
        cls.mock_url = f"http://127.0.0.1:{cls.mock.stdout.readline().strip()}"
        config = os.path.join(cls.dir.name, "config.toml")
        with open(config, "w") as f:
            f.write(gateway_config(ARGS.upstream, cls.mock_url, cls.dir.name))
        cls.port = free_port()
        cls.gateway_log_path = os.path.join(cls.dir.name, "gateway.log")
        cls.gateway_log = open(cls.gateway_log_path, "w")
        cls.gateway = subprocess.Popen(
            [ARGS.gateway, "--config", config, "--port", str(cls.port)],
            stdout=cls.gateway_log, stderr=subprocess.STDOUT,
        )
        cls.base = f"http://127.0.0.1:{cls.port}"
        for _ in range(100):
            try:
                get_json(f"{cls.base}/health")
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the gateway did not start:\n" + cls.gateway_output())

    @classmethod
    def tearDownClass(cls):
        for p in (cls.gateway, cls.mock):
            p.terminate()
            p.wait(timeout=10)
        cls.gateway_log.close()
        cls.dir.cleanup()

    @classmethod
    def gateway_output(cls):
        cls.gateway_log.flush()
        with open(cls.gateway_log_path) as f:
            return f.read()[-20000:]

    def upstream_requests(self):
        return get_json(f"{self.mock_url}/__mock/requests")

    def claude(self, prompt, headers):
        """Runs `claude -p` with a fresh HOME; returns (the JSON result, the requests it caused)."""
        before = len(self.upstream_requests())
        home = tempfile.mkdtemp(dir=self.dir.name)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": home,
            "ANTHROPIC_BASE_URL": self.base,
            "ANTHROPIC_API_KEY": VIRTUAL_KEY,
            "ANTHROPIC_MODEL": MODEL,
            "ANTHROPIC_SMALL_FAST_MODEL": MODEL,
            "ANTHROPIC_DEFAULT_HAIKU_MODEL": MODEL,
            "ANTHROPIC_DEFAULT_SONNET_MODEL": MODEL,
            "ANTHROPIC_DEFAULT_OPUS_MODEL": MODEL,
            "ANTHROPIC_CUSTOM_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items()),
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CI": "1",
        }
        # --allowedTools, not --dangerously-skip-permissions: that one refuses to run as root.
        command = [CLAUDE, "-p", prompt, "--output-format", "json", "--model", MODEL,
                   "--allowedTools", "Bash"]
        try:
            run = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True,
                                 timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            self.fail(f"claude timed out after {RUN_TIMEOUT} s\n--- stdout\n{e.stdout}\n"
                      f"--- stderr\n{e.stderr}\n--- gateway\n{self.gateway_output()}")
        requests = self.upstream_requests()[before:]
        report = (f"--- exit {run.returncode}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}\n"
                  f"--- gateway\n{self.gateway_output()}\n--- upstream requests\n"
                  + "\n".join(f"{r['method']} {r['path']}?{r['query']}" for r in requests))
        self.assertEqual(run.returncode, 0, report)
        try:
            result = json.loads(run.stdout)
        except json.JSONDecodeError:
            self.fail("claude's stdout is not JSON\n" + report)
        self.assertFalse(result.get("is_error"), report)
        return result, requests, report

    def expected_path(self):
        return "/v1/messages" if ARGS.upstream == "anthropic" else "/v1/chat/completions"

    def test_a_plain_prompt_completes(self):
        result, requests, report = self.claude("Say hello.", {"x-mock-chunks": "3"})
        self.assertEqual(result["result"].strip(), EXPECTED, report)
        paths = {r["path"] for r in requests}
        self.assertIn(self.expected_path(), paths, report)
        for r in requests:
            body = json.loads(r["body"] or "null")
            if isinstance(body, dict) and "model" in body:
                self.assertEqual(body["model"], MODEL, report)

    def test_a_tool_use_round_runs_bash_and_returns_its_output(self):
        args = {"command": "echo gateway-tool-ok", "description": "echo"}
        result, requests, report = self.claude(
            "Run the echo command.",
            {"x-mock-tool": "Bash", "x-mock-tool-args": json.dumps(args)},
        )
        bodies = [json.loads(r["body"]) for r in requests
                  if r["path"] == self.expected_path() and r["body"]]
        offered = [i for i, b in enumerate(bodies) if tool_offered(b, "Bash")]
        self.assertTrue(offered, "no request offered the Bash tool\n" + report)
        carried = [i for i, b in enumerate(bodies) if "gateway-tool-ok" in tool_results(b)]
        self.assertTrue(carried, "no request carried the tool result\n" + report)
        self.assertGreater(carried[0], offered[0], report)
        # Claude Code appends a <system-reminder> to the tool's output; the mock echoes it too.
        self.assertTrue(result["result"].startswith("tool result: gateway-tool-ok"), report)

    def test_an_answer_that_opens_with_thinking_completes(self):
        # Claude Code asks for extended thinking; the answer's thinking block is not the result.
        result, requests, report = self.claude("Think, then say hello.",
                                               {"x-mock-reasoning": "pondering the greeting"})
        self.assertEqual(result["result"].strip(), EXPECTED, report)


def tool_offered(body, name):
    """Whether a Messages or Chat Completions body offers the tool `name`."""
    for tool in body.get("tools") or []:
        if tool.get("name") == name or (tool.get("function") or {}).get("name") == name:
            return True
    return False


def tool_results(body):
    """The text of every tool result in a Messages or Chat Completions body."""
    texts = []
    for message in body.get("messages") or []:
        if message.get("role") == "tool":
            texts.append(content_text(message.get("content")))
        elif message.get("role") == "user" and isinstance(message.get("content"), list):
            for block in message["content"]:
                if block.get("type") == "tool_result":
                    texts.append(content_text(block.get("content")))
    return "\n".join(texts)


def content_text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


if __name__ == "__main__":
    if shutil.which("npm") is None and not os.path.exists(CLAUDE):
        sys.exit("claude_code.py: npm is needed to install Claude Code")
    print(f"claude_code.py: upstream = {ARGS.upstream}", file=sys.stderr)
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGS, verbosity=2)
