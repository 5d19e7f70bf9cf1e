"""STaR: a society's checked answers fine-tune its member (mine, export, train, rounds)."""
