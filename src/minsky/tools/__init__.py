"""Tools that agents call inline while they generate (Toolformer style)."""
