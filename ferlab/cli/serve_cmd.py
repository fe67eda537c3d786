"""`ferlab serve`: the web page and REST API on uvicorn."""

from __future__ import annotations

import argparse
import errno

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve the web page and the REST API",
                              description="Serve the web page (/) and the REST API (/v1/predict, /v1/explain, "
                                          "/v1/model, /healthz; docs at /docs) with the bundled or a given model.")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--model", default=None, metavar="CHECKPOINT|ONNX",
                   help="a .pt checkpoint or .onnx model (default: the bundled model)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, metavar="N",
                   help="largest accepted upload in MB (default: %(default)s)")
    p.add_argument("--workers-concurrency", type=int, default=2, metavar="N",
                   help="inferences run at once; more requests queue, then get 503 (default: %(default)s)")
    p.add_argument("--queue-size", type=int, default=16, metavar="N",
                   help="requests allowed to wait for a free inference slot (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="answer 504 when a request takes longer (default: %(default)s)")
    p.set_defaults(func=run)


def _check_address(host: str, port: int) -> None:
    """ConfigError unless `host:port` can be listened on now, so a busy port or an unknown host is one line
    before the model loads rather than uvicorn's log after it (the port is freed again at once)."""
    import socket

    from ferlab.errors import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        raise ConfigError(f"--host {host}: not an address this machine can listen on ({err})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does, so TIME_WAIT is no obstacle
        try:
            sock.bind(address)
        except OSError as err:
            reason = "already in use" if err.errno == errno.EADDRINUSE else (err.strerror or str(err))
            raise ConfigError(f"cannot listen on {host}:{port}: {reason}") from None


def run(args: argparse.Namespace) -> int:
    import math

    from ferlab.errors import ConfigError
    from ferlab.serve.settings import ServeSettings

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
    checks = (  # named by their flags here; ServeSettings would name its own fields (and bytes, not MB)
        ("--max-upload-mb", args.max_upload_mb, "a finite size of at least one byte", 0 < args.max_upload_mb < math.inf
         and args.max_upload_mb * 1024 * 1024 >= 1),
        ("--timeout", args.timeout, "a finite number > 0", 0 < args.timeout < math.inf),
        ("--workers-concurrency", args.workers_concurrency, ">= 1", args.workers_concurrency >= 1),
        ("--queue-size", args.queue_size, ">= 0", args.queue_size >= 0),
    )
    for flag, value, rule, ok in checks:
        if not ok:
            raise ConfigError(f"{flag} must be {rule}, got {value}")
    settings = ServeSettings(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
                             max_concurrent_inferences=args.workers_concurrency, queue_size=args.queue_size,
                             request_timeout_s=args.timeout)
    _check_address(args.host, args.port)
    import uvicorn

    from ferlab.predict import Predictor
    from ferlab.serve.app import create_app

    # torch, not the ONNX twin: /v1/explain needs gradients
    predictor = Predictor.from_checkpoint(args.model) if args.model else Predictor.from_pretrained(backend="torch")
    predictor.warm_up()  # detector sessions (and the int8 CenterFace cache) before the first request
    app = create_app(predictor, settings=settings)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)
    return 0
