"""azproxy: an OpenAI-compatible gateway in front of Azure OpenAI."""

__version__ = "0.1.0"
