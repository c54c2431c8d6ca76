"""Custody services: the chain watcher, bank statement import, custodian
balance reports, matching and breaks, and the outbound instruction outbox.
Each module's public functions are plain services: keyword-only arguments,
one transaction, an audit event for every state change."""
