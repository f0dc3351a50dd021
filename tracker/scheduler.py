"""Scheduled updates: every serving process looks for due ones now and then and publishes them.

Several processes may look at once; services.publish_entry makes each publish happen once.
"""
import logging

from flask import Flask

from . import services
from .extensions import db, socketio

log = logging.getLogger(__name__)


def run(app: Flask) -> None:
    """Publish scheduled updates as their time comes, for as long as the process serves.

    The first look is at once, so updates whose time passed while no server ran publish on start.
    """
    interval = app.config["SCHEDULER_SECONDS"]
    while interval > 0:
        try:
            with app.app_context():
                services.publish_due()
                db.session.remove()
        except Exception:
            log.exception("publishing scheduled updates failed; trying again in %s s", interval)
        socketio.sleep(interval)
