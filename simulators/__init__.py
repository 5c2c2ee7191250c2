"""Simulated kilns (OPC UA) and presses (MQTT). Imports nothing from the platform packages."""
