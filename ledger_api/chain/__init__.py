"""The chain layer: compiled artifacts, backends, transaction sending and typed contract clients."""
