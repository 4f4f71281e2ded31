"""share-bridge: redeem partners' Didit share tokens once, and tell downstream the outcome."""

__version__ = "0.1.0"
