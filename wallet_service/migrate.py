"""Schema management through Alembic (``wallet-service db upgrade`` / ``db check``)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from .resources import migrations_dir


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Build or upgrade the schema to ``revision``."""
    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def check(engine: Engine) -> None:
    """:raises alembic.util.CommandError: the models and the migrations disagree."""
    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.check(cfg)
