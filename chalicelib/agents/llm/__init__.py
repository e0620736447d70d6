"""The ``llm`` agent and its wire formats (one module per provider API)."""

from chalicelib.agents.llm.agent import LlmAgent

__all__ = ["LlmAgent"]
