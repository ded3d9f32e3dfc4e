"""The HTTP gateway: routing by Host, the Distribution API handlers, errors, server bootstrap."""
