"""The shared kernel's security: envelope encryption (master keyring, data keys), API keys and
accounts, the hash-chained audit log, and master-key rotation. Every product line that holds a
person's data (personas, Flux subjects) uses these; none owns them."""
