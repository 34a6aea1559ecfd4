"""``hotspot-erc serve``: predictions over HTTP from a checkpoint loaded once (FastAPI, uvicorn).

* :mod:`.config`: :class:`ServeConfig`, every option and limit of the service;
* :mod:`.app`: :func:`build_app`, the FastAPI application (routes, admission, errors);
* :mod:`.intake`: a request's body into the request's private folder;
* :mod:`.guard`: the request size limit and response headers (ASGI middleware);
* :mod:`.containers`: which uploads may reach ffmpeg;
* :mod:`.reports`: predictions kept for their report links;
* :mod:`.server`: :func:`serve`, uvicorn until SIGTERM.

Needs the ``serve`` extra (``pip install -e '.[serve]'``). The modules import FastAPI, so this
package imports nothing at first: ``from hotspot_erc.serve.server import serve``.
"""
