"""The enforcing gateway in front of vLLM."""
