"""Job callbacks (SPEC section 10): who may name which URL, Standard Webhooks signing, and
delivery with retries and SSRF protection."""
