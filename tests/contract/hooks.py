"""Schemathesis hooks for the edrlink contract test (loaded via SCHEMATHESIS_HOOKS).

The partner API takes compact JWS bodies as `application/jose`. Schemathesis has
no serializer for that media type; the body is a string (the schema's pattern
makes it JWS-shaped), sent as its UTF-8 bytes.
"""
import schemathesis


@schemathesis.serializer("application/jose")
def jose(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    # Negative testing may generate a non-string: send its JSON text.
    import json

    return json.dumps(value).encode("utf-8")
