"""The audit: records chained by hash, and ``vault audit verify`` replaying them (ADR 0021)."""
