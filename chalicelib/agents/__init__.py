"""Agents: the plugins that do the work of a step.

Importing this package registers the built-ins (``transform``, ``http``, ``python``, ``llm``, ``email``).
Callers look agents up by the step's ``"agent"`` name::

    from chalicelib.agents import get_agent
    errors = get_agent(step["agent"]).validate(step, "steps[2]")
    output = get_agent(step["agent"]).run(ctx)
"""

from __future__ import annotations

from chalicelib.agents.base import Agent, AgentContext, AgentError, IntegrationError, StepError, is_pure
from chalicelib.agents.email import EmailAgent
from chalicelib.agents.http import HttpAgent
from chalicelib.agents.llm import LlmAgent
from chalicelib.agents.python import PythonAgent
from chalicelib.agents.registry import AGENTS, UnknownAgent, agent_names, get_agent, register
from chalicelib.agents.transform import TransformAgent

__all__ = [
    "AGENTS",
    "Agent",
    "AgentContext",
    "AgentError",
    "EmailAgent",
    "HttpAgent",
    "IntegrationError",
    "LlmAgent",
    "PythonAgent",
    "StepError",
    "TransformAgent",
    "UnknownAgent",
    "agent_names",
    "get_agent",
    "is_pure",
    "register",
]

for _agent in (TransformAgent(), HttpAgent(), PythonAgent(), LlmAgent(), EmailAgent()):
    if _agent.name not in AGENTS:  # tolerate re-import (e.g. importlib.reload in a test)
        register(_agent)
del _agent
