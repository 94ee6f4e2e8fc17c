"""Solana exporter: RPC endpoint health, chain progress, wallets and the platform's transactions."""
