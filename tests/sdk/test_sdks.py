"""The official openai and anthropic Python SDKs talk to the real gateway binary, unchanged but for base_url;
so do LangChain's OpenAIEmbeddings and LlamaIndex's OpenAIEmbedding.

Starts the mock upstream and the gateway as processes, then drives both SDKs, streaming and not,
and checks what the client got and what the upstream received. Usage:
    python tests/sdk/test_sdks.py <path to llm-gateway> <path to mock-upstream>
"""

import base64
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import anthropic
import openai
from langchain_openai import OpenAIEmbeddings
from llama_index.embeddings.openai import OpenAIEmbedding

GATEWAY_BIN, MOCK_BIN = sys.argv[1], sys.argv[2]
EXPECTED = "chunk0 chunk1 chunk2 "


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


class SdkTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = subprocess.Popen([MOCK_BIN], stdout=subprocess.PIPE, text=True)
        cls.mock_url = f"http://127.0.0.1:{cls.mock.stdout.readline().strip()}"
        cls.dir = tempfile.TemporaryDirectory()
        config = os.path.join(cls.dir.name, "config.toml")
        with open(config, "w") as f:
            f.write(f"""
[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-provider-openai"
endpoint = "{cls.mock_url}/v1"

[[providers]]
id = "anthropic"
provider_type = "anthropic"
api_key = "sk-ant-provider"
endpoint = "{cls.mock_url}"

[key_map.team-alpha-key]
label = "Team Alpha"
openai_key = "sk-alpha"
anthropic_key = "sk-ant-alpha"

[database]
url = "sqlite://{cls.dir.name}/ledger.db?mode=rwc"
spool_dir = "{cls.dir.name}/spool"
""")
        cls.port = free_port()
        cls.log = open(os.path.join(cls.dir.name, "gateway.log"), "w")
        cls.gateway = subprocess.Popen(
            [GATEWAY_BIN, "--config", config, "--port", str(cls.port)],
            stdout=cls.log, stderr=subprocess.STDOUT,
        )
        cls.base = f"http://127.0.0.1:{cls.port}"
        for _ in range(100):
            try:
                get_json(f"{cls.base}/health")
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the gateway did not start")

    @classmethod
    def tearDownClass(cls):
        for p in (cls.gateway, cls.mock):
            p.terminate()
            p.wait(timeout=10)
        cls.log.close()
        cls.dir.cleanup()

    def last_upstream(self):
        return get_json(f"{self.mock_url}/__mock/requests")[-1]

    # --- openai ---------------------------------------------------------------

    def openai_client(self, key="not-needed"):
        return openai.OpenAI(base_url=f"{self.base}/v1", api_key=key, max_retries=0)

    def test_openai_chat_completion(self):
        response = self.openai_client().chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Hello from Python!"}],
            extra_headers={"x-source": "python-app"},
        )
        self.assertEqual(response.choices[0].message.content, EXPECTED)
        self.assertGreater(response.usage.prompt_tokens, 0)
        upstream = self.last_upstream()
        self.assertEqual(upstream["path"], "/v1/chat/completions")
        self.assertEqual(upstream["headers"]["authorization"], "Bearer sk-provider-openai")
        self.assertNotIn("x-source", upstream["headers"])

    def test_openai_streaming(self):
        stream = self.openai_client().chat.completions.create(
            model="gpt-4o",
            stream=True,
            messages=[{"role": "user", "content": "Count to 3."}],
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        self.assertEqual(text, EXPECTED)

    def test_openai_raw_response_carries_the_request_id(self):
        raw = self.openai_client().chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
        self.assertTrue(raw.headers.get("x-request-id"))
        self.assertEqual(raw.headers.get("x-upstream-request-id"), "upstream-req-123")

    def test_openai_virtual_key(self):
        self.openai_client("team-alpha-key").chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
        self.assertEqual(self.last_upstream()["headers"]["authorization"], "Bearer sk-alpha")

    def test_openai_models_list(self):
        ids = [m.id for m in self.openai_client().models.list()]
        self.assertIn("gpt-4o", ids)
        self.assertIn("claude-sonnet-4-20250514", ids)

    def test_openai_errors_parse_as_sdk_errors(self):
        with self.assertRaises(openai.NotFoundError) as caught:
            self.openai_client().chat.completions.create(
                model="no-such-model", messages=[{"role": "user", "content": "hi"}]
            )
        self.assertIn("/v1/models", caught.exception.message)
        with self.assertRaises(openai.RateLimitError):
            self.openai_client().chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"x-mock-status": "429"},
            )

    # The mock's vector of input i: 8 floats (i + 1) / 8 + j / 16, as exact in float32.
    @staticmethod
    def mock_vector(i, dimensions=8):
        return [(i + 1) * 0.125 + j * 0.0625 for j in range(dimensions)]

    def test_openai_embeddings_of_a_string_arrive_as_base64_and_decode(self):
        # The SDK asks for base64 by default and decodes it itself: the gateway passes it through.
        response = self.openai_client().embeddings.create(
            model="text-embedding-3-small", input="The quick brown fox")
        self.assertEqual(len(response.data), 1)
        self.assertEqual(list(response.data[0].embedding), self.mock_vector(0))
        self.assertGreater(response.usage.prompt_tokens, 0)
        upstream = self.last_upstream()
        self.assertEqual(upstream["path"], "/v1/embeddings")
        self.assertEqual(json.loads(upstream["body"])["encoding_format"], "base64")

    def test_openai_embeddings_of_a_list_as_floats_with_dimensions(self):
        response = self.openai_client().embeddings.create(
            model="text-embedding-3-small", input=["first", "second", "third"],
            encoding_format="float", dimensions=4)
        self.assertEqual([d.index for d in response.data], [0, 1, 2])
        self.assertEqual(response.data[2].embedding, self.mock_vector(2, 4))

    def test_openai_embeddings_explicit_base64_stay_a_string(self):
        raw = self.openai_client().embeddings.with_raw_response.create(
            model="text-embedding-3-small", input=["a", "b"], encoding_format="base64")
        body = json.loads(raw.http_response.text)
        self.assertIsInstance(body["data"][1]["embedding"], str)
        decoded = struct.unpack("<8f", base64.b64decode(body["data"][1]["embedding"]))
        self.assertEqual(list(decoded), self.mock_vector(1))

    def test_openai_legacy_completion_with_a_suffix(self):
        response = self.openai_client().completions.create(
            model="gpt-3.5-turbo-instruct", prompt="def add(a, b):\n    ",
            suffix="\n\nprint(add(1, 2))", max_tokens=32)
        self.assertEqual(response.choices[0].text, EXPECTED)
        self.assertEqual(response.usage.completion_tokens, 3)
        upstream = self.last_upstream()
        self.assertEqual(upstream["path"], "/v1/completions")
        self.assertEqual(json.loads(upstream["body"])["suffix"], "\n\nprint(add(1, 2))")

    def test_openai_legacy_completion_streaming(self):
        stream = self.openai_client().completions.create(
            model="gpt-3.5-turbo-instruct", prompt="Count to 3.", stream=True)
        text = "".join(c.choices[0].text for c in stream if c.choices)
        self.assertEqual(text, EXPECTED)

    def test_openai_models_retrieve(self):
        model = self.openai_client().models.retrieve("text-embedding-3-small")
        self.assertEqual((model.id, model.object, model.owned_by),
                         ("text-embedding-3-small", "model", "openai"))
        with self.assertRaises(openai.NotFoundError):
            self.openai_client().models.retrieve("no-such-model")

    def test_openai_embeddings_of_a_claude_model_are_refused_as_a_bad_request(self):
        with self.assertRaises(openai.BadRequestError) as caught:
            self.openai_client().embeddings.create(model="claude-sonnet-4-20250514", input="x")
        self.assertIn("Anthropic's API", caught.exception.message)

    # --- retrieval frameworks: embeddings through the gateway --------------------

    RESPONSES_TOOLS = [{"type": "function", "name": "get_weather", "description": "The weather of a city",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                       "required": ["city"]}}]

    def test_openai_responses_create(self):
        response = self.openai_client().responses.create(
            model="gpt-4o", instructions="Be brief.", input="Hello from the Responses API",
        )
        self.assertEqual(response.output_text, EXPECTED)
        self.assertGreater(response.usage.input_tokens, 0)
        self.assertEqual(response.usage.output_tokens, 3)
        self.assertEqual(self.last_upstream()["path"], "/v1/responses")

    def test_openai_responses_stream_with_a_function_call(self):
        with self.openai_client().responses.stream(
            model="gpt-4o", input="Weather in Paris?", tools=self.RESPONSES_TOOLS,
            extra_headers={"x-mock-tool": "get_weather", "x-mock-tool-args": json.dumps({"city": "Paris"})},
        ) as stream:
            arguments = "".join(e.delta for e in stream if e.type == "response.function_call_arguments.delta")
            final = stream.get_final_response()
        self.assertEqual(json.loads(arguments), {"city": "Paris"})
        call = final.output[0]
        self.assertEqual((call.type, call.name, call.call_id), ("function_call", "get_weather", "call_mock_0"))
        self.assertEqual(final.usage.output_tokens, 3)
        # `stream=True` on create: the raw typed events.
        events = list(self.openai_client().responses.create(model="gpt-4o", input="Hi", stream=True))
        self.assertEqual(events[0].type, "response.created")
        self.assertEqual(events[-1].type, "response.completed")
        self.assertEqual("".join(e.delta for e in events if e.type == "response.output_text.delta"), EXPECTED)

    def test_openai_responses_reach_a_claude_model_through_translation(self):
        client = self.openai_client()
        steer = {"x-mock-tool": "get_weather", "x-mock-tool-args": json.dumps({"city": "Paris"})}
        response = client.responses.create(
            model="claude-sonnet-4-20250514", instructions="Be brief.", input="Weather in Paris?",
            tools=self.RESPONSES_TOOLS, extra_headers=steer,
        )
        self.assertEqual(self.last_upstream()["path"], "/v1/messages")
        calls = [item for item in response.output if item.type == "function_call"]
        self.assertEqual(len(calls), 1)
        self.assertEqual((calls[0].name, json.loads(calls[0].arguments)), ("get_weather", {"city": "Paris"}))
        # The call's output goes back as the SDK builds it: the previous output items, then the result.
        follow_up = client.responses.create(
            model="claude-sonnet-4-20250514", instructions="Be brief.", tools=self.RESPONSES_TOOLS,
            input=[{"role": "user", "content": "Weather in Paris?"}, *response.output,
                   {"type": "function_call_output", "call_id": calls[0].call_id, "output": "18 degrees"}],
            extra_headers=steer,
        )
        self.assertEqual(follow_up.output_text, "tool result: 18 degrees")
        sent = json.loads(self.last_upstream()["body"])
        self.assertEqual(sent["messages"][-1]["content"][0]["type"], "tool_result")
        # Streamed, through the SDK's helper.
        with client.responses.stream(model="claude-sonnet-4-20250514", input="Hello") as stream:
            text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
            final = stream.get_final_response()
        self.assertEqual(text, EXPECTED)
        self.assertEqual(final.output_text, EXPECTED)
        self.assertGreater(final.usage.input_tokens, 0)

    def test_openai_responses_untranslatable_field_is_a_bad_request(self):
        with self.assertRaises(openai.BadRequestError) as raised:
            self.openai_client().responses.create(
                model="claude-sonnet-4-20250514", input="Go on", previous_response_id="resp_123")
        self.assertEqual(raised.exception.body["param"], "previous_response_id")

    def test_langchain_openai_embeddings(self):
        # check_embedding_ctx_length=False: no tiktoken (whose encodings it would download).
        embeddings = OpenAIEmbeddings(
            model="text-embedding-3-small", base_url=f"{self.base}/v1", api_key="not-needed",
            check_embedding_ctx_length=False, max_retries=0)
        documents = embeddings.embed_documents(["first document", "second document"])
        self.assertEqual(documents, [self.mock_vector(0), self.mock_vector(1)])
        self.assertEqual(embeddings.embed_query("a question"), self.mock_vector(0))
        self.assertEqual(self.last_upstream()["path"], "/v1/embeddings")

    def test_llama_index_openai_embedding(self):
        embedding = OpenAIEmbedding(
            model="text-embedding-3-small", api_base=f"{self.base}/v1", api_key="not-needed",
            max_retries=0)
        self.assertEqual(embedding.get_text_embedding("a document"), self.mock_vector(0))
        batch = embedding.get_text_embedding_batch(["first", "second", "third"])
        self.assertEqual(batch, [self.mock_vector(i) for i in range(3)])
        self.assertEqual(embedding.get_query_embedding("a question"), self.mock_vector(0))
        sent = json.loads(self.last_upstream()["body"])
        self.assertEqual(sent["model"], "text-embedding-3-small")

    # --- anthropic ------------------------------------------------------------

    def anthropic_client(self, key="not-needed"):
        return anthropic.Anthropic(base_url=self.base, api_key=key, max_retries=0)

    def test_anthropic_message(self):
        message = self.anthropic_client().messages.create(
            model="claude-sonnet-4-20250514",
            max_tokens=1024,
            messages=[{"role": "user", "content": "Hello from Python!"}],
            extra_headers={"x-source": "python-app"},
        )
        self.assertEqual(message.content[0].text, EXPECTED)
        self.assertEqual(message.usage.output_tokens, 3)
        upstream = self.last_upstream()
        self.assertEqual(upstream["path"], "/v1/messages")
        self.assertEqual(upstream["headers"]["x-api-key"], "sk-ant-provider")
        # The SDK's own anthropic-version is forwarded as it is.
        self.assertRegex(upstream["headers"]["anthropic-version"], r"^\d{4}-\d{2}-\d{2}$")

    def test_anthropic_streaming(self):
        with self.anthropic_client().messages.stream(
            model="claude-sonnet-4-20250514",
            max_tokens=1024,
            messages=[{"role": "user", "content": "Count to 3."}],
        ) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        self.assertEqual(text, EXPECTED)
        self.assertEqual(final.usage.output_tokens, 3)
        self.assertEqual(final.stop_reason, "end_turn")

    def test_anthropic_count_tokens(self):
        count = self.anthropic_client().messages.count_tokens(
            model="claude-sonnet-4-20250514",
            messages=[{"role": "user", "content": "Hello"}],
        )
        self.assertGreater(count.input_tokens, 0)

    def test_anthropic_virtual_key(self):
        self.anthropic_client("team-alpha-key").messages.create(
            model="claude-sonnet-4-20250514",
            max_tokens=16,
            messages=[{"role": "user", "content": "hi"}],
        )
        self.assertEqual(self.last_upstream()["headers"]["x-api-key"], "sk-ant-alpha")

    def test_anthropic_errors_parse_as_sdk_errors(self):
        with self.assertRaises(anthropic.NotFoundError):
            self.anthropic_client().messages.create(
                model="claude-future-model-9", max_tokens=16,
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"x-mock-status": "404"},
            )
        with self.assertRaises(anthropic.RateLimitError):
            self.anthropic_client().messages.create(
                model="gpt-4o", max_tokens=16, messages=[{"role": "user", "content": "hi"}],
                extra_headers={"x-mock-status": "429"},
            )

    # --- translation: each SDK on the other API's model -------------------------

    WEATHER_ARGS = {"city": "Paris", "unit": "celsius"}

    def test_openai_sdk_streams_a_tool_call_from_a_claude_model(self):
        tools = [{"type": "function", "function": {
            "name": "get_weather", "description": "The weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                           "required": ["city"]}}}]
        stream = self.openai_client().chat.completions.create(
            model="claude-sonnet-4-20250514", stream=True, tools=tools,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            extra_headers={"x-mock-tool": "get_weather", "x-mock-tool-args": json.dumps(self.WEATHER_ARGS),
                           "x-mock-tools": "2"},
        )
        calls, finish = {}, None
        for chunk in stream:
            for choice in chunk.choices:
                for call in choice.delta.tool_calls or []:
                    got = calls.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
                    got["id"] = call.id or got["id"]
                    if call.function is not None:
                        got["name"] += call.function.name or ""
                        got["arguments"] += call.function.arguments or ""
                finish = choice.finish_reason or finish
        self.assertEqual(sorted(calls), [0, 1])
        for i, call in calls.items():
            self.assertEqual(call["id"], f"toolu_mock_{i}")
            self.assertEqual(call["name"], "get_weather")
            self.assertEqual(json.loads(call["arguments"]), self.WEATHER_ARGS)
        self.assertEqual(finish, "tool_calls")
        self.assertEqual(self.last_upstream()["path"], "/v1/messages")

        # The tool's result goes back to Claude as a tool_result block with the same id.
        answer = self.openai_client().chat.completions.create(
            model="claude-sonnet-4-20250514", tools=tools,
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "toolu_mock_0", "type": "function",
                     "function": {"name": "get_weather", "arguments": json.dumps(self.WEATHER_ARGS)}}]},
                {"role": "tool", "tool_call_id": "toolu_mock_0", "content": "18 degrees, sunny"},
            ],
            extra_headers={"x-mock-tool": "get_weather"},
        )
        self.assertEqual(answer.choices[0].message.content, "tool result: 18 degrees, sunny")
        sent = json.loads(self.last_upstream()["body"])
        result = sent["messages"][-1]["content"][0]
        self.assertEqual((result["type"], result["tool_use_id"]), ("tool_result", "toolu_mock_0"))

    def test_anthropic_sdk_streams_a_tool_use_from_gpt_4o(self):
        tools = [{"name": "get_weather", "description": "The weather of a city",
                  "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                                   "required": ["city"]}}]
        with self.anthropic_client().messages.stream(
            model="gpt-4o", max_tokens=256, tools=tools,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            extra_headers={"x-mock-tool": "get_weather", "x-mock-tool-args": json.dumps(self.WEATHER_ARGS)},
        ) as stream:
            final = stream.get_final_message()
        self.assertEqual(final.stop_reason, "tool_use")
        uses = [b for b in final.content if b.type == "tool_use"]
        self.assertEqual(len(uses), 1, final.content)
        self.assertEqual(uses[0].id, "call_mock_0")
        self.assertEqual(uses[0].name, "get_weather")
        self.assertEqual(uses[0].input, self.WEATHER_ARGS)
        self.assertGreater(final.usage.output_tokens, 0)
        upstream = self.last_upstream()
        self.assertEqual(upstream["path"], "/v1/chat/completions")
        self.assertEqual(upstream["headers"]["authorization"], "Bearer sk-provider-openai")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
