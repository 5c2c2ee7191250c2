"""Shared by the edge agent and the server: the reading type, the plant model, config loading."""
