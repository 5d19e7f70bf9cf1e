"""The economy of minds: wallets, payments and the ledger that keeps money conserved."""
