"""The worker, ``python -m app.worker``: work that no request waits for.

Today it seals the audit log: every ``WORKER_INTERVAL`` seconds it links the events committed
since into the hash chain (app.services.audit.seal), so an event is tamper-evident seconds
after its commit, with no cron job. Webhook and mail deliveries will run in the same rounds.
"""
