"""The web layer: one blueprint per audience, a request-scoped database session."""

from __future__ import annotations

from flask import Flask
from flask import current_app
from flask import g
from sqlalchemy.orm import Session

from ..state import WalletState


def get_session() -> Session:
    """The request's session, opened on first use and closed (rolled back) at teardown."""
    if "db" not in g:
        g.db = wallet().sessions()
    session: Session = g.db
    return session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close_session)


def wallet(app: Flask | None = None) -> WalletState:
    """The app's state (settings, engine, sessions, passes, Google, limiters), built by
    ``build_state`` and stored by ``create_app``."""
    state: WalletState = (app or current_app).extensions["wallet"]
    return state
