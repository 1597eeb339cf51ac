"""Network definitions: pure PyTorch modules, each with a config dataclass."""
