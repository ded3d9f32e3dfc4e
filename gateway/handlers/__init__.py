"""Distribution API handlers, one module per resource. Each is thin: parse, call the domain,
write the response."""
