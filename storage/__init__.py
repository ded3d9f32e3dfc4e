"""The registry domain (repositories, manifests, tags, uploads) over blob and metadata drivers."""
