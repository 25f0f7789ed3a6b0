"""Microdot 2.x peer: the same small static file, /heap, a WebSocket
echo at /echo (microdot.websocket), and the routed JSON GET /api/<int:id>.

usage: micropython microdot_app.py PORT FILE
"""
import gc
import os
import sys
from microdot import Microdot, send_file
from microdot.websocket import WebSocket, with_websocket

app = Microdot()
_FILE = sys.argv[2]
_SIZE = str(os.stat(_FILE)[6])
# the bench echoes 64 KiB messages (the default limit is the request body
# limit, 16 KiB; 0 would refuse every message)
WebSocket.max_message_length = 1 << 17


@app.route(_FILE[_FILE.rfind("/"):])
async def static(request):
    # send_file sends no Content-Length; add it so clients need not wait
    # for the close to find the end of the body
    res = send_file(_FILE)
    res.headers["Content-Length"] = _SIZE
    return res


@app.route("/heap")
async def heap(request):
    gc.collect()
    return "%d %d\n" % (gc.mem_alloc(), gc.mem_free())


@app.route("/api/<int:id>")
async def item(request, id):
    return {"id": id, "name": "item %d" % id}


@app.route("/echo")
@with_websocket
async def echo(request, ws):
    while True:
        await ws.send(await ws.receive())


gc.collect()
app.run(host="127.0.0.1", port=int(sys.argv[1]))
