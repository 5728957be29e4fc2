"""Pages without data: which GET paths answer a page shell or a static file.

A browser opening the console on a server that asks for a token has no token yet:
it must get the page (whose script then asks for the token when the API answers
401) before it can send one. :class:`PageShells` tells a middleware which paths
those are, so it can let them through and keep every other path, all the data,
behind the token. Built by the factory, published as :meth:`core.Host.is_page_shell`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import Scope


class PageShells:
    """``shells(path)``: whether a GET of ``path`` is answered by a page or file that holds no data.

    ``routes`` are the app's native routes in match order (the WSGI bridge left out) and
    ``pages`` those of them that serve pages without data (the API docs). A path a native
    route matches is a shell only when that route is one of ``pages``; any other path reaches
    the WSGI app, and is a shell when ``console`` (the core console's predicate; ``None``
    when a plugin's WSGI app replaces the console) says so.
    """

    def __init__(
        self, routes: Sequence[BaseRoute], pages: Collection[BaseRoute], console: Callable[[str], bool] | None
    ) -> None:
        self.routes = tuple(routes)
        self.pages = {id(route) for route in pages}
        self.console = console

    def __call__(self, path: str) -> bool:
        scope: Scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "root_path": "",
            "headers": [],
            "query_string": b"",
        }
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE:  # a native route answers (a partial match: with 405)
                return id(route) in self.pages
        return self.console is not None and self.console(path)


def no_page_shells(path: str) -> bool:
    """The predicate before an app is built: no path is a page shell."""
    return False
