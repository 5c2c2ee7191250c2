"""Collectors the agent runs: OPC UA (``opcua``), MQTT JSON (``mqtt_json``), Sparkplug B
(``sparkplug``). Each module holds one source and the parser of its ``[[source]]`` table."""
