"""Edge agent: OPC UA and MQTT sources feeding the durable spool."""
