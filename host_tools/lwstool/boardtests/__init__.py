"""The integration suite `lwstool test` runs against one board: HTTP and
WebSocket checks over the network, REPL, WLAN and config checks over
serial. The board comes from $LWSTOOL_TARGET (vboard | serial:PORT |
net:HOST[:PORT]) and its profile from $LWSTOOL_BOARD."""
