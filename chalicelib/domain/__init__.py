"""The pure domain: states, definitions and the state machine. No AWS, no clock, no environment."""
