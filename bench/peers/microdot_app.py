"""Microdot 2.x peer: the same small static file, and /heap.

usage: micropython microdot_app.py PORT FILE
"""
import gc
import os
import sys
from microdot import Microdot, send_file

app = Microdot()
_FILE = sys.argv[2]
_SIZE = str(os.stat(_FILE)[6])


@app.route("/index.html")
async def index(request):
    # send_file sends no Content-Length; add it so clients need not wait
    # for the close to find the end of the body
    res = send_file(_FILE)
    res.headers["Content-Length"] = _SIZE
    return res


@app.route("/heap")
async def heap(request):
    gc.collect()
    return "%d %d\n" % (gc.mem_alloc(), gc.mem_free())


gc.collect()
app.run(host="127.0.0.1", port=int(sys.argv[1]))
