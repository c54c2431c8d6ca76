"""The EVM chain watcher: one poll per rail (``poll``), talking to the node
(``node``), scanning new blocks (``scan``) and walking back reorgs
(``reorg``)."""

from .node import ChainError, PollResult, web3_for
from .poll import chain_poll, chain_watch_all
from .reorg import chain_rewind

__all__ = ["ChainError", "PollResult", "chain_poll", "chain_rewind", "chain_watch_all", "web3_for"]
