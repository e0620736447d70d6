"""The agent registry: names in step definitions map to agent instances here.

An unknown name fails loudly (``UnknownAgent`` lists what is known) rather than falling back
to some default, so a typo in ``"agent"`` is caught when the definition is validated.
"""

from __future__ import annotations

from chalicelib.agents.base import Agent

__all__ = ["AGENTS", "UnknownAgent", "agent_names", "get_agent", "register"]

AGENTS: dict[str, Agent] = {}


class UnknownAgent(KeyError):
    """No agent is registered under this name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.message = f"unknown agent {name!r}; known agents: {', '.join(agent_names()) or '(none)'}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would repr() the message, quotes and all
        return self.message


def register(agent: Agent) -> Agent:
    """Add ``agent`` under ``agent.name``; raises ``ValueError`` if the name is taken."""
    name = getattr(agent, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"agent {agent!r} has no name")
    if name in AGENTS:
        raise ValueError(f"an agent named {name!r} is already registered")
    AGENTS[name] = agent
    return agent


def get_agent(name: str) -> Agent:
    """The agent registered under ``name``; raises ``UnknownAgent`` otherwise."""
    try:
        return AGENTS[name]
    except (KeyError, TypeError):
        raise UnknownAgent(name) from None


def agent_names() -> list[str]:
    """Registered agent names, sorted."""
    return sorted(AGENTS)
