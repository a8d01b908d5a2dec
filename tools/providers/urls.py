"""Where a request to a configured base URL goes: the endpoint's path joined to the base URL's
path, its query (``?api-version=``, ``?api_key=``) kept after it, as gateways expect.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def join_url(base_url: str, path: str, params: Mapping[str, str] | None = None) -> str:
    """``path`` below ``base_url``'s path, with ``base_url``'s query kept and ``params`` after
    it: ``join_url("https://gw/v1?api-version=1", "/images/generations")`` is
    ``https://gw/v1/images/generations?api-version=1`` (pasting the path after the whole URL
    would send it inside the query). ``params`` are added here because httpx's ``params=``
    replaces a URL's query instead of adding to it."""
    parts = urlsplit(base_url)
    joined = f"{parts.path.rstrip('/')}/{path.lstrip('/')}"
    query = "&".join(q for q in (parts.query, urlencode(params or {})) if q)
    return urlunsplit(parts._replace(path=joined, query=query, fragment=""))


def split_query(base_url: str) -> tuple[str, dict[str, str]]:
    """``base_url`` without its query, and the query's values: for a client library that
    appends paths to a base URL itself and takes default query values apart."""
    parts = urlsplit(base_url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit(parts._replace(query="", fragment="")), query
