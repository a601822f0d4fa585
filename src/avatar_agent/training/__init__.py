"""Training and evaluation of the affect model: never imported by the server."""
