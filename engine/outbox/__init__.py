"""The outbox: message keys, queue, transports (file, SMTP), dispatch."""
