"""Store: line protocol, batching writer, durable spool, InfluxDB and embedded stores."""
