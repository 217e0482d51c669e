"""Configuration read once from the environment and validated at start-up."""
