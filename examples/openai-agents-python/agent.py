"""An OpenAI Agents SDK agent whose tools come from membrane.

    pip install -r requirements.txt    # openai-agents, Python 3.10+
    python agent.py stdio "What is 2**100? Use python_run."
    MEMBRANE_TOKEN=... python agent.py http "List /workspace with sh."

stdio launches membrane itself (MEMBRANE_BIN, default `membrane` on PATH);
http reaches a running one (MEMBRANE_URL, default http://127.0.0.1:8765/mcp)
with MEMBRANE_TOKEN as its bearer token.

The model is AGENT_MODEL (default qwen3:8b) behind an OpenAI-compatible Chat
Completions API: OPENAI_BASE_URL if set, else Ollama's /v1 at OLLAMA_HOST.
It prints the agent's final answer on stdout.
"""

import asyncio
import os
import sys
from urllib.parse import urlsplit

from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
from agents.mcp import MCPServerStdio, MCPServerStreamableHttp
from openai import AsyncOpenAI

USAGE = "usage: python agent.py stdio|http [question]"


def ollama_url(host: str | None = None) -> str:
    """OLLAMA_HOST as Ollama reads it: no scheme and no port means 11434."""
    host = host or os.environ.get("OLLAMA_HOST") or "127.0.0.1:11434"
    has_scheme = host.startswith(("http://", "https://"))
    parts = urlsplit(host if has_scheme else "http://" + host)
    netloc = parts.netloc
    if not has_scheme and parts.port is None:
        netloc += ":11434"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def membrane_server(transport: str):
    if transport == "stdio":
        # Pass what membrane reads; the MCP SDK gives the child little else.
        env = {"NO_COLOR": "1"}
        for k, v in os.environ.items():
            if k in ("PATH", "HOME", "TMPDIR", "OLLAMA_HOST") or k.startswith("MEMBRANE_"):
                env[k] = v
        return MCPServerStdio(
            name="membrane",
            params={"command": os.environ.get("MEMBRANE_BIN", "membrane"), "args": [], "env": env},
            cache_tools_list=False,  # membrane's tools change as Ollama's models do
            client_session_timeout_seconds=120,  # a sandboxed call may take a while
        )
    if transport == "http":
        token = os.environ.get("MEMBRANE_TOKEN")
        return MCPServerStreamableHttp(
            name="membrane",
            params={
                "url": os.environ.get("MEMBRANE_URL", "http://127.0.0.1:8765/mcp"),
                "headers": {"Authorization": f"Bearer {token}"} if token else {},
                "timeout": 30,
                "sse_read_timeout": 300,
            },
            cache_tools_list=False,
            client_session_timeout_seconds=120,
        )
    sys.exit(USAGE)


async def main() -> None:
    transport = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    question = (
        sys.argv[2]
        if len(sys.argv) > 2
        else "Run `echo hello` with the sh tool and tell me what it printed."
    )
    base_url = os.environ.get("OPENAI_BASE_URL") or ollama_url() + "/v1"
    client = AsyncOpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "ollama"))
    if not os.environ.get("OPENAI_BASE_URL"):
        # Traces go to OpenAI's platform; a local model has nowhere to send them.
        set_tracing_disabled(True)

    async with membrane_server(transport) as server:
        agent = Agent(
            name="membrane agent",
            instructions=(
                "You have tools from membrane: sh and python_run run code in a sandbox with "
                "no network, and the other tools are local models. Use a tool when it helps, "
                "then answer briefly."
            ),
            mcp_servers=[server],
            model=OpenAIChatCompletionsModel(
                model=os.environ.get("AGENT_MODEL", "qwen3:8b"), openai_client=client
            ),
        )
        result = await Runner.run(agent, question, max_turns=8)
        print(result.final_output)


if __name__ == "__main__":
    asyncio.run(main())
