"""One client for every stage that asks an LLM: cached on disk, resumable, bounded, retried.

See :mod:`stages.lib.endpoint.client` for the usage; the config section is
:class:`~stages.lib.endpoint.config.EndpointConfig`.
"""

from stages.lib.endpoint.client import EndpointClient, open_client
from stages.lib.endpoint.config import EndpointConfig
from stages.lib.endpoint.request import ChatReply, ChatRequest

__all__ = ["ChatReply", "ChatRequest", "EndpointClient", "EndpointConfig", "open_client"]
