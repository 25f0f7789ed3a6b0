# main.py: bring the server up. An optional /lws.json sets the port and
# the folder served at /, e.g. {"port": 80, "docroot": "www"}.
import lws


def main():
    cfg = {}
    try:
        import json
        with open("lws.json") as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        pass
    root = cfg.get("docroot", "www")
    lws.Context(port=cfg.get("port", 80),
                mounts=[lws.Mount("/", "file://" + root)]).run()


main()
