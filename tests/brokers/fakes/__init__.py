"""Local stand-ins for broker REST APIs, served on 127.0.0.1 with an ephemeral port.

Each speaks its broker's documented request paths, field names and error bodies closely
enough for the adapters' tests, and can be switched into error modes (401, 403, 422, 429
with Retry-After, 500, 503, a stall longer than the client's timeout, a malformed answer).
Nothing here touches the network beyond loopback.
"""
