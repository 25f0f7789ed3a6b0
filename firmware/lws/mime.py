"""MIME types by file name extension: what file:// mounts and
lws.app's send_file() label files with. A leaf: it imports nothing."""

# one constant instead of a dict: less heap
_MIME = ("\nhtml text/html\nhtm text/html\ncss text/css\n"
         "js application/javascript\nmjs application/javascript\n"
         "json application/json\ntxt text/plain\nxml text/xml\n"
         "png image/png\njpg image/jpeg\njpeg image/jpeg\ngif image/gif\n"
         "svg image/svg+xml\nico image/x-icon\nwebp image/webp\n"
         "wasm application/wasm\npdf application/pdf\nzip application/zip\n"
         "gz application/gzip\nmp3 audio/mpeg\nmp4 video/mp4\n"
         "woff font/woff\nwoff2 font/woff2\nttf font/ttf\n")


def mime_type(name, extra=None):
    ext = name[name.rfind(".") + 1:].lower() if "." in name else ""
    if extra and ext in extra:
        return extra[ext]
    i = _MIME.find("\n%s " % ext) if ext else -1
    if i < 0:
        return "application/octet-stream"
    i += len(ext) + 2
    return _MIME[i:_MIME.find("\n", i)]
